//! Streaming translation: upstream SSE events are read into [`Delta`]s, which a writer turns
//! into the client dialect's events as they arrive.
//!
//! Nothing is held back that the client could already be shown: text and tool-argument
//! fragments go out as soon as their upstream event completes. Only what a dialect needs at the
//! end (Anthropic's `message_delta` wants the stop reason and the usage together, Gemini wants a
//! tool call's arguments whole) waits for the upstream to say it is done. Upstream bytes may be
//! split anywhere; the framing is the crate's SSE framer, so the output does not depend on it.

use bytes::Bytes;
use serde_json::Value;

use super::ir::{Stop, TokenUsage};
use super::{ResponseOptions, anthropic, gemini, openai, responses};
use crate::sse::{Framer, parse_event};
use crate::{Dialect, Usage};

/// An event larger than this is dropped rather than buffered without bound.
const MAX_EVENT_BYTES: usize = 16 << 20;

/// One step of a streamed answer, in no dialect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delta {
    /// The upstream named its answer.
    Start {
        id: Option<String>,
    },
    Text(String),
    /// A tool call begins; `key` tells its argument fragments apart from other calls'.
    ToolStart {
        key: u64,
        id: String,
        name: String,
    },
    ToolArgs {
        key: u64,
        args: String,
    },
    Stop(Stop),
    /// Usage so far (the latest report replaces earlier ones).
    Usage(TokenUsage),
    /// The upstream completed its answer.
    Done,
    Error(String),
}

pub(crate) trait Reader: Send + Sync {
    /// One complete upstream event with data.
    fn event(&mut self, name: Option<&[u8]>, data: &[u8], out: &mut Vec<Delta>);
    /// The upstream ended (some dialects only know then that the answer completed).
    fn end(&mut self, _out: &mut Vec<Delta>) {}
}

pub(crate) trait Writer: Send + Sync {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>);
}

/// What every writer needs to name its answer.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) model: String,
    pub(crate) created: u64,
}

/// What every writer keeps of the answer as a whole, whatever its dialect: how to name it (the
/// upstream's first id, else one made from `created`) and the latest usage the upstream reported.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) meta: Meta,
    pub(crate) id: Option<String>,
    pub(crate) usage: Option<TokenUsage>,
}

impl Answer {
    pub(crate) fn new(meta: Meta) -> Self {
        Answer {
            meta,
            id: None,
            usage: None,
        }
    }

    /// Keeps the answer's id (the first one named wins) or its usage (the latest wins); every
    /// other delta is content, which the writer handles itself.
    pub(crate) fn keep(&mut self, delta: Delta) {
        match delta {
            Delta::Start { id } => {
                if self.id.is_none() {
                    self.id = id;
                }
            }
            Delta::Usage(usage) => self.usage = Some(usage),
            Delta::Text(_)
            | Delta::ToolStart { .. }
            | Delta::ToolArgs { .. }
            | Delta::Stop(_)
            | Delta::Done
            | Delta::Error(_) => {}
        }
    }

    /// The answer's id: the upstream's, else `prefix` and the `created` time.
    pub(crate) fn id_or(&self, prefix: &str) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{prefix}{}", self.meta.created))
    }
}

/// Translates one upstream stream (`from`) into the client's dialect (`to`).
pub struct StreamTranslator {
    reader: Box<dyn Reader>,
    /// `None` when both sides speak the same dialect: the bytes pass through as they are.
    writer: Option<Box<dyn Writer>>,
    framer: Framer,
    pending: Vec<u8>,
    oversized: bool,
    usage: Option<TokenUsage>,
    completed: bool,
    error: Option<String>,
    finished: bool,
}

impl std::fmt::Debug for StreamTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTranslator")
            .field("usage", &self.usage)
            .field("completed", &self.completed)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl StreamTranslator {
    pub fn new(from: Dialect, to: Dialect, opts: &ResponseOptions) -> Self {
        let meta = Meta {
            model: opts.model.to_owned(),
            created: opts.created_unix,
        };
        let reader: Box<dyn Reader> = match from {
            Dialect::OpenAi => Box::new(openai::stream::Reader::default()),
            Dialect::Anthropic => Box::new(anthropic::stream::Reader::default()),
            Dialect::Gemini => Box::new(gemini::stream::Reader::default()),
            Dialect::Responses => Box::new(responses::stream::Reader::default()),
        };
        let writer: Option<Box<dyn Writer>> = if from == to {
            None
        } else {
            Some(match to {
                Dialect::OpenAi => Box::new(openai::stream::Writer::new(meta)),
                Dialect::Anthropic => Box::new(anthropic::stream::Writer::new(meta)),
                Dialect::Gemini => Box::new(gemini::stream::Writer::new(meta)),
                Dialect::Responses => Box::new(responses::stream::Writer::new(meta)),
            })
        };
        StreamTranslator {
            reader,
            writer,
            framer: Framer::default(),
            pending: Vec::new(),
            oversized: false,
            usage: None,
            completed: false,
            error: None,
            finished: false,
        }
    }

    /// Feeds upstream bytes (split anywhere) and returns the client bytes ready now.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(rest) = chunk.get(pos..) {
            if rest.is_empty() {
                break;
            }
            match self.framer.find_end(rest) {
                Some(len) => {
                    self.keep(rest.get(..len).unwrap_or_default());
                    let raw = std::mem::take(&mut self.pending);
                    if !std::mem::replace(&mut self.oversized, false) {
                        self.event(&raw, &mut out);
                    }
                    pos += len;
                }
                None => {
                    self.keep(rest);
                    break;
                }
            }
        }
        if self.writer.is_none() {
            return Bytes::copy_from_slice(chunk);
        }
        Bytes::from(out)
    }

    /// At upstream end: the last, unterminated event, and the closing events if the upstream
    /// completed its answer. Calling it again returns nothing.
    pub fn finish(&mut self) -> Bytes {
        if std::mem::replace(&mut self.finished, true) {
            return Bytes::new();
        }
        let mut out = Vec::new();
        let raw = std::mem::take(&mut self.pending);
        if !std::mem::replace(&mut self.oversized, false) && !raw.is_empty() {
            self.event(&raw, &mut out);
        }
        let mut deltas = Vec::new();
        self.reader.end(&mut deltas);
        self.apply(deltas, &mut out);
        if self.writer.is_none() {
            return Bytes::new();
        }
        Bytes::from(out)
    }

    /// Usage as the upstream reported it so far (input includes cache reads and writes).
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(TokenUsage::to_usage)
    }

    /// The upstream completed its answer (its end-of-answer event was seen).
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// Message of the last error event the upstream sent.
    pub fn upstream_error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.oversized || self.pending.len().saturating_add(bytes.len()) > MAX_EVENT_BYTES {
            self.oversized = true;
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }

    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let event = parse_event(raw);
        if !event.has_data {
            return;
        }
        let mut deltas = Vec::new();
        self.reader
            .event(event.name, event.data.as_ref(), &mut deltas);
        self.apply(deltas, out);
    }

    fn apply(&mut self, deltas: Vec<Delta>, out: &mut Vec<u8>) {
        for delta in deltas {
            if self.completed {
                // The answer is closed for the client; a late upstream event cannot reopen it.
                continue;
            }
            match &delta {
                Delta::Usage(usage) => self.usage = Some(*usage),
                Delta::Done => self.completed = true,
                Delta::Error(message) => self.error = Some(message.clone()),
                Delta::Start { .. }
                | Delta::Text(_)
                | Delta::ToolStart { .. }
                | Delta::ToolArgs { .. }
                | Delta::Stop(_) => {}
            }
            if let Some(writer) = self.writer.as_mut() {
                writer.write(delta, out);
            }
        }
    }
}

/// Appends one SSE event.
pub(crate) fn sse(out: &mut Vec<u8>, name: Option<&str>, data: &Value) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&super::to_bytes(data));
    out.extend_from_slice(b"\n\n");
}

/// Parses event data as JSON, `None` when it is not.
pub(crate) fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// The message of an error value (`{"message": ..}` or a string), else the raw JSON.
pub(crate) fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(from: Dialect, to: Dialect, pieces: &[&[u8]]) -> Vec<u8> {
        let opts = ResponseOptions {
            model: "m",
            created_unix: 1,
        };
        let mut translator = StreamTranslator::new(from, to, &opts);
        let mut out = Vec::new();
        for piece in pieces {
            out.extend_from_slice(&translator.push(piece));
        }
        out.extend_from_slice(&translator.finish());
        out
    }

    #[test]
    fn output_does_not_depend_on_where_the_upstream_split_its_bytes() {
        let upstream: &[u8] = b"event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":3}}}\r\n\r\n\
event: content_block_delta\rdata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"h\xc3\xa9\"}}\r\r\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}";
        for to in [Dialect::OpenAi, Dialect::Gemini, Dialect::Responses] {
            let whole = translate(Dialect::Anthropic, to, &[upstream]);
            let bytes: Vec<&[u8]> = upstream.chunks(1).collect();
            assert_eq!(translate(Dialect::Anthropic, to, &bytes), whole, "{to:?}");
            for cut in 0..upstream.len() {
                let (a, b) = upstream.split_at(cut);
                assert_eq!(
                    translate(Dialect::Anthropic, to, &[a, b]),
                    whole,
                    "{to:?} cut {cut}"
                );
            }
            assert!(
                String::from_utf8_lossy(&whole).contains("h\u{e9}"),
                "{to:?}"
            );
        }
    }

    #[test]
    fn same_dialect_passes_bytes_through_and_still_reads_usage() {
        let opts = ResponseOptions {
            model: "m",
            created_unix: 1,
        };
        let mut translator = StreamTranslator::new(Dialect::OpenAi, Dialect::OpenAi, &opts);
        let chunk = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        assert_eq!(translator.push(chunk).as_ref(), chunk);
        assert!(translator.finish().is_empty());
        assert!(translator.completed());
        assert_eq!(translator.usage().map(|u| u.total()), Some(5));
    }
}
