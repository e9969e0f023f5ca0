//! The tee between an upstream SSE stream and the client.
//!
//! Every streamed call passes through [`StreamTap::push`], so the common case must cost next to
//! nothing: the upstream's `Bytes` go back out as they are (no copy, nothing held back) while the
//! tap watches the events go by for what settlement needs (usage, completion, errors, the model).
//! Only a few events are ever deserialized, and only after a cheap byte search says they are
//! worth it. The one exception to pass-through is an OpenAI stream where the gateway injected
//! `stream_options.include_usage`: then the usage-only chunk the client never asked for is cut
//! out, which needs complete events, so an incomplete trailing event is held until it completes.
//! Anthropic, Responses and Gemini streams always report usage, so nothing is ever hidden there.
//!
//! Gemini streams are read in their SSE form (`:streamGenerateContent?alt=sse`); without
//! `alt=sse` Gemini answers one JSON array, which is not a stream this tap can follow.
//!
//! Garbage in never means a panic or an error: unparseable events are forwarded untouched.

mod gemini;
mod responses;
#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;
mod trailer;

pub use trailer::{RungateTrailer, TrailerTokens, rungate_event, stream_error_event};

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Dialect;
use crate::lenient::{ArrayLen, Scalar, error_message};
use crate::sse::{self, Event, Framer};
use crate::usage::{AnthropicUsage, GeminiUsage, Usage, openai_usage};

/// An event larger than this is not a usage, error or start event (those are small), so it is
/// forwarded without being kept for parsing; this bounds memory on a stream of garbage.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// The Responses API's final event (`response.completed`) repeats the whole response, output and
/// echoed instructions and tools included, before its `usage`; it gets more room than the small
/// usage events of the other dialects so that a long answer is still settled on real usage.
const MAX_RESPONSES_EVENT_BYTES: usize = 16 << 20;

/// Watches one upstream stream on its way to the client.
#[derive(Debug)]
pub struct StreamTap {
    dialect: Dialect,
    /// Cutting the usage-only chunk out (OpenAI with injected `include_usage`).
    hiding: bool,
    framer: Framer,
    /// The current, unfinished event: a copy kept for parsing when passing through; the bytes
    /// themselves, not yet forwarded, when hiding.
    held: Vec<u8>,
    /// The current event outgrew `max_event`: it goes through unparsed.
    oversized: bool,
    /// The largest event kept for parsing ([`MAX_EVENT_BYTES`], or more for Responses).
    max_event: usize,
    seen: Seen,
}

/// What the stream has told us so far.
#[derive(Debug, Default)]
struct Seen {
    /// OpenAI and Responses: the whole usage, reported at once.
    reported_usage: Option<Usage>,
    anthropic_usage: Option<AnthropicUsage>,
    gemini_usage: Option<GeminiUsage>,
    completed: bool,
    error: Option<String>,
    model: Option<String>,
    tools: Vec<String>,
}

impl StreamTap {
    /// `hide_usage_chunk`: OpenAI only — the gateway injected `include_usage`, so the usage-only
    /// chunk (`"choices": []` with `usage`) must not reach the client.
    pub fn new(dialect: Dialect, hide_usage_chunk: bool) -> Self {
        StreamTap {
            dialect,
            hiding: hide_usage_chunk && dialect == Dialect::OpenAi,
            framer: Framer::default(),
            held: Vec::new(),
            oversized: false,
            max_event: match dialect {
                Dialect::Responses => MAX_RESPONSES_EVENT_BYTES,
                Dialect::OpenAi | Dialect::Anthropic | Dialect::Gemini => MAX_EVENT_BYTES,
            },
            seen: Seen::default(),
        }
    }

    /// Feeds one chunk of upstream bytes (events may be split anywhere, with `\n`, `\r\n` or
    /// `\r` line endings) and returns the bytes to send to the client now.
    ///
    /// When nothing is hidden this is the very same `Bytes` (zero copy, nothing held back). When
    /// hiding, it is every complete event except the usage-only one, and only an incomplete
    /// trailing event is held back.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let mut out = Output::default();
        let mut pos = 0;
        loop {
            let rest = chunk.get(pos..).unwrap_or_default();
            match self.framer.find_end(rest) {
                Some(len) => {
                    self.end_event(&chunk, pos..pos + len, &mut out);
                    pos += len;
                }
                None => {
                    self.keep_partial(&chunk, pos..chunk.len(), &mut out);
                    break;
                }
            }
        }
        if self.hiding {
            out.into_bytes(&chunk)
        } else {
            chunk
        }
    }

    /// At upstream EOF: what is still to be sent to the client. That is the held incomplete
    /// final event (when hiding), followed by the line ending(s) that close an unterminated final
    /// event, so that an event appended after the stream (Rungate's trailer, an error) is framed
    /// on its own instead of being glued to the upstream's last line.
    pub fn finish(&mut self) -> Bytes {
        let closing = self.framer.closing(!self.held.is_empty() || self.oversized);
        self.framer = Framer::default();
        let oversized = std::mem::replace(&mut self.oversized, false);
        let held = std::mem::take(&mut self.held);
        // An unterminated final event still counts: some servers end on `data: [DONE]` alone.
        let hidden = !oversized && !held.is_empty() && self.dispatch(&held);
        if hidden {
            return Bytes::new();
        }
        let mut out = if self.hiding { held } else { Vec::new() };
        out.extend_from_slice(closing);
        Bytes::from(out)
    }

    /// Best knowledge of usage so far; partial if the stream died. OpenAI: the last non-null
    /// `usage`. Anthropic: input from `message_start` (cache reads and writes included), output
    /// the last cumulative `output_tokens` (from `message_delta`, else `message_start`).
    /// Responses: the `response.usage` of the final event (`response.completed`, `.incomplete`
    /// or `.failed`), so none if the stream died before it. Gemini: the latest of the cumulative
    /// `usageMetadata` counts.
    pub fn usage(&self) -> Option<Usage> {
        match self.dialect {
            Dialect::OpenAi | Dialect::Responses => self.seen.reported_usage,
            Dialect::Anthropic => self.seen.anthropic_usage.map(AnthropicUsage::total),
            Dialect::Gemini => self.seen.gemini_usage.map(GeminiUsage::total),
        }
    }

    /// OpenAI: saw `data: [DONE]`; Anthropic: saw `message_stop`; Responses: saw
    /// `response.completed` or `response.incomplete` (a stop at `max_output_tokens` is still a
    /// finished answer); Gemini: saw a candidate with a `finishReason`, or a prompt blocked
    /// outright (`promptFeedback.blockReason`).
    pub fn completed(&self) -> bool {
        self.seen.completed
    }

    /// Message of an error event in the stream (the last one, if several).
    pub fn upstream_error(&self) -> Option<&str> {
        self.seen.error.as_deref()
    }

    /// Names of the tools the model called in this stream, in order.
    pub fn proposed_tools(&self) -> &[String] {
        &self.seen.tools
    }

    /// The model named by the stream (first chunk / `message_start` / `response.created` /
    /// Gemini's `modelVersion`).
    pub fn response_model(&self) -> Option<&str> {
        self.seen.model.as_deref()
    }

    /// An event ends at `range` of `chunk` (it may have begun in earlier chunks).
    fn end_event(&mut self, chunk: &Bytes, range: Range<usize>, out: &mut Output) {
        let tail = chunk.get(range.clone()).unwrap_or_default();
        if std::mem::replace(&mut self.oversized, false) {
            if self.hiding {
                out.push_slice(chunk, range);
            }
            return;
        }
        if self.held.is_empty() {
            let hide = self.dispatch(tail);
            if self.hiding && !hide {
                out.push_slice(chunk, range);
            }
            return;
        }
        let mut event = std::mem::take(&mut self.held);
        event.extend_from_slice(tail);
        let hide = self.dispatch(&event);
        if self.hiding && !hide {
            out.push_bytes(chunk, &event);
        }
        event.clear();
        self.held = event;
    }

    /// `range` of `chunk` starts an event (or continues one) that has not ended yet.
    fn keep_partial(&mut self, chunk: &Bytes, range: Range<usize>, out: &mut Output) {
        let part = chunk.get(range.clone()).unwrap_or_default();
        if part.is_empty() {
            return;
        }
        if !self.oversized && self.held.len().saturating_add(part.len()) <= self.max_event {
            self.held.extend_from_slice(part);
            return;
        }
        if !self.oversized {
            self.oversized = true;
            if self.hiding {
                out.push_bytes(chunk, &self.held);
            }
            self.held = Vec::new();
        }
        if self.hiding {
            out.push_slice(chunk, range);
        }
    }

    /// Takes note of one complete event; returns whether it must be hidden from the client.
    fn dispatch(&mut self, raw: &[u8]) -> bool {
        let event = sse::parse_event(raw);
        match self.dialect {
            Dialect::OpenAi => self.on_openai_event(&event),
            Dialect::Anthropic => {
                self.on_anthropic_event(&event);
                false
            }
            Dialect::Responses => {
                self.on_responses_event(&event);
                false
            }
            Dialect::Gemini => {
                self.on_gemini_event(&event);
                false
            }
        }
    }

    fn on_openai_event(&mut self, event: &Event<'_>) -> bool {
        #[derive(Deserialize)]
        struct Chunk<'a> {
            #[serde(borrow, default)]
            model: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            usage: Option<&'a RawValue>,
            #[serde(default)]
            choices: ArrayLen,
            #[serde(borrow, default)]
            error: Option<&'a RawValue>,
            #[serde(borrow, default)]
            message: Option<Scalar<'a>>,
        }
        if !event.has_data {
            return false;
        }
        let data = event.data.trim_ascii();
        if data == b"[DONE]" {
            self.seen.completed = true;
            return false;
        }
        if contains(data, b"\"tool_calls\"") && contains(data, b"\"name\"") {
            self.note_openai_tools(data);
        }
        let named_error = event.name == Some(b"error");
        let worth_parsing = (self.seen.model.is_none() && contains(data, b"\"model\""))
            || has_usage(data)
            || named_error
            || contains(data, b"\"error\"");
        if !worth_parsing {
            return false;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
            return false;
        };
        self.note_model(chunk.model);
        if let Some(error) = chunk.error {
            self.seen.error = Some(error_message(error));
        } else if named_error {
            let message = chunk.message.and_then(Scalar::into_string);
            self.seen.error = Some(message.unwrap_or_else(|| lossy(data)));
        }
        let Some(usage) = chunk.usage.and_then(openai_usage) else {
            return false;
        };
        self.seen.reported_usage = Some(usage);
        self.hiding && chunk.choices.0.is_none_or(|n| n == 0)
    }

    /// A tool call's name arrives once, in its first delta.
    fn note_openai_tools(&mut self, data: &[u8]) {
        self.seen.tools.extend(crate::answer::openai(data));
    }

    /// Keeps the first non-empty model name (Azure's first chunk names `""`).
    fn note_model(&mut self, model: Option<Scalar<'_>>) {
        match (&self.seen.model, model) {
            (None, Some(Scalar::Str(model))) if !model.is_empty() => {
                self.seen.model = Some(model.into_owned());
            }
            _ => {}
        }
    }

    fn on_anthropic_event(&mut self, event: &Event<'_>) {
        let data = event.data.as_ref();
        let inferred;
        let name = match event.name {
            Some(name) => name,
            None => {
                inferred = event_type(data);
                inferred.as_bytes()
            }
        };
        match name {
            b"message_start" => self.on_message_start(data),
            b"message_delta" => self.on_message_delta(data),
            b"message_stop" => self.seen.completed = true,
            b"content_block_start" => self.on_block_start(data),
            b"error" => self.on_anthropic_error(data),
            _ => {}
        }
    }

    fn on_block_start(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Start {
            content_block: Block,
        }
        #[derive(Deserialize)]
        struct Block {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            name: String,
        }
        if let Ok(start) = serde_json::from_slice::<Start>(data) {
            if start.content_block.kind == "tool_use" && !start.content_block.name.is_empty() {
                self.seen.tools.push(start.content_block.name);
            }
        }
    }

    fn on_message_start(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Start<'a> {
            #[serde(borrow)]
            message: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct Message<'a> {
            #[serde(borrow, default)]
            model: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            usage: Option<&'a RawValue>,
        }
        let Ok(start) = serde_json::from_slice::<Start>(data) else {
            return;
        };
        let Ok(message) = serde_json::from_str::<Message>(start.message.get()) else {
            return;
        };
        self.note_model(message.model);
        self.note_anthropic_usage(message.usage.and_then(AnthropicUsage::read));
    }

    fn on_message_delta(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Delta<'a> {
            #[serde(borrow, default)]
            usage: Option<&'a RawValue>,
        }
        let usage = serde_json::from_slice::<Delta>(data)
            .ok()
            .and_then(|delta| delta.usage)
            .and_then(AnthropicUsage::read);
        self.note_anthropic_usage(usage);
    }

    /// Merges a usage report into the ones seen before (`message_start`, then `message_delta`).
    fn note_anthropic_usage(&mut self, usage: Option<AnthropicUsage>) {
        if let Some(usage) = usage {
            self.seen
                .anthropic_usage
                .get_or_insert_default()
                .merge(usage);
        }
    }

    fn on_anthropic_error(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Failure<'a> {
            #[serde(borrow, default)]
            error: Option<&'a RawValue>,
        }
        let message = match serde_json::from_slice::<Failure>(data) {
            Ok(Failure { error: Some(error) }) => error_message(error),
            _ => lossy(data),
        };
        self.seen.error = Some(message);
    }
}

/// The `type` of an event that came without an `event:` line.
fn event_type(data: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Scalar<'a>>,
    }
    if data.is_empty() {
        return String::new();
    }
    serde_json::from_slice::<Typed>(data)
        .ok()
        .and_then(|typed| typed.kind)
        .and_then(Scalar::into_string)
        .unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memmem::find(haystack, needle).is_some()
}

/// Whether a chunk carries a non-null `"usage"` (OpenAI repeats `"usage":null` on every chunk
/// once `include_usage` is on, and those are not worth a parse).
fn has_usage(data: &[u8]) -> bool {
    memmem::find_iter(data, b"\"usage\"").any(|at| {
        let after = data.get(at + 7..).unwrap_or_default();
        let after = after.trim_ascii_start();
        match after.strip_prefix(b":") {
            Some(value) => !value.trim_ascii_start().starts_with(b"null"),
            None => false,
        }
    })
}

/// An error message made from raw event data, when it is not the expected JSON.
fn lossy(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data.trim_ascii());
    if text.is_empty() {
        "upstream error".to_owned()
    } else {
        text.into_owned()
    }
}

/// The bytes `push` returns while hiding: ideally one contiguous range of the input chunk
/// (returned as a zero-copy slice), a copy only when something was cut out or held bytes lead.
#[derive(Debug, Default)]
enum Output {
    #[default]
    Empty,
    Slice(Range<usize>),
    Owned(BytesMut),
}

impl Output {
    fn push_slice(&mut self, chunk: &Bytes, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        match self {
            Output::Empty => *self = Output::Slice(range),
            Output::Slice(prev) if prev.end == range.start => prev.end = range.end,
            Output::Slice(_) | Output::Owned(_) => {
                self.push_bytes(chunk, chunk.get(range).unwrap_or_default());
            }
        }
    }

    fn push_bytes(&mut self, chunk: &Bytes, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut buf = match std::mem::take(self) {
            Output::Empty => BytesMut::new(),
            Output::Slice(range) => BytesMut::from(chunk.get(range).unwrap_or_default()),
            Output::Owned(buf) => buf,
        };
        buf.extend_from_slice(bytes);
        *self = Output::Owned(buf);
    }

    fn into_bytes(self, chunk: &Bytes) -> Bytes {
        match self {
            Output::Empty => Bytes::new(),
            Output::Slice(range) if range.end <= chunk.len() => chunk.slice(range),
            Output::Slice(_) => Bytes::new(),
            Output::Owned(buf) => buf.freeze(),
        }
    }
}
