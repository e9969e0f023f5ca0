//! What one request asks the mock to do, read from its body: the reply, the usage to report, the
//! timing, and any scripted failure.
//!
//! Both providers' request bodies are read by the same lenient structs: only the fields that decide the
//! answer are parsed (`model`, `messages`, `system`, `stream`, `stream_options`, `tools`, `mock`) and
//! everything else is ignored, as a real provider would accept fields this mock has never heard of.
//! The `"mock"` object alone is strict, so a typo in a test script fails loudly with a 400 instead of
//! being silently ignored.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::MockConfig;

/// The reply when the last user message carries no text.
const DEFAULT_REPLY: &str = "Hello from mock";
/// The phrase that, in the final user message of a request declaring tools, asks for a tool call.
const TOOL_TRIGGER: &str = "use tool";
/// How long a `"hang": true` request waits before it would answer; longer than any test runs.
pub(crate) const HANG: Duration = Duration::from_secs(3600);

/// A request body the mock cannot interpret; rendered as a 400 in the provider's error format.
#[derive(Debug)]
pub(crate) struct BadRequest(pub(crate) String);

/// Everything the mock will do for one request.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// OpenAI's `stream_options.include_usage`: whether a final usage chunk is sent.
    pub(crate) include_usage: bool,
    pub(crate) answer: Answer,
    pub(crate) usage: Usage,
    pub(crate) latency: Duration,
    pub(crate) chunk_delay: Duration,
    /// Answer with this status and a provider-format error instead of a reply.
    pub(crate) status: Option<StatusCode>,
    /// Streaming only: send this many events, then break the connection.
    pub(crate) die_after_events: Option<usize>,
    pub(crate) hang: bool,
}

#[derive(Debug)]
pub(crate) enum Answer {
    Text(String),
    ToolCall(ToolCall),
}

#[derive(Debug)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// The arguments as JSON text: OpenAI's `function.arguments`, Anthropic's streamed `partial_json`.
    pub(crate) arguments: String,
    /// The arguments as an object: Anthropic's `input`.
    pub(crate) input: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default)]
    messages: Vec<WireMessage>,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Vec<WireTool>>,
    #[serde(default)]
    mock: Option<Directives>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

/// A message's content: a string, or parts of which only those with `text` count.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn texts(&self) -> impl Iterator<Item = &str> {
        let (single, parts) = match self {
            Content::Text(text) => (Some(text.as_str()), None),
            Content::Parts(parts) => (None, Some(parts)),
            Content::Other(_) => (None, None),
        };
        let from_parts = parts
            .into_iter()
            .flatten()
            .filter_map(|part| part.text.as_deref());
        single.into_iter().chain(from_parts)
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A declared tool: Anthropic names it at the top level, OpenAI under `function`.
#[derive(Deserialize)]
struct WireTool {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
}

impl WireTool {
    fn name(&self) -> Option<&str> {
        let nested = self.function.as_ref().and_then(|f| f.name.as_deref());
        self.name.as_deref().or(nested)
    }
}

/// The request body's `"mock"` object: how a test scripts one request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Directives {
    latency_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    usage: Option<UsageOverride>,
    status: Option<u16>,
    die_after_events: Option<usize>,
    #[serde(default)]
    hang: bool,
    tool_call: Option<ToolCallDirective>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageOverride {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallDirective {
    name: String,
    /// An object, or a string sent verbatim as the arguments text (to script malformed arguments).
    #[serde(default)]
    arguments: Option<Value>,
}

impl Plan {
    pub(crate) fn parse(body: &[u8], config: &MockConfig) -> Result<Plan, BadRequest> {
        let request: WireRequest = serde_json::from_slice(body)
            .map_err(|error| BadRequest(format!("could not parse the JSON body: {error}")))?;
        let directives = request.mock.as_ref();
        let status = match directives.and_then(|d| d.status) {
            None => None,
            Some(code) => Some(
                StatusCode::from_u16(code)
                    .map_err(|_| BadRequest(format!("mock.status {code} is not an HTTP status")))?,
            ),
        };
        let answer = answer(&request);
        let usage = usage(&request, &answer);
        let millis = |pick: fn(&Directives) -> Option<u64>, default: Duration| {
            directives
                .and_then(pick)
                .map_or(default, Duration::from_millis)
        };
        Ok(Plan {
            stream: request.stream.unwrap_or(false),
            include_usage: request
                .stream_options
                .as_ref()
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
            latency: millis(|d| d.latency_ms, config.latency),
            chunk_delay: millis(|d| d.chunk_delay_ms, config.chunk_delay),
            status,
            die_after_events: directives.and_then(|d| d.die_after_events),
            hang: directives.is_some_and(|d| d.hang),
            answer,
            usage,
            model: request.model,
        })
    }
}

fn answer(request: &WireRequest) -> Answer {
    if let Some(scripted) = request.mock.as_ref().and_then(|d| d.tool_call.as_ref()) {
        return Answer::ToolCall(scripted_tool_call(scripted));
    }
    if let Some(name) = triggered_tool(request) {
        return Answer::ToolCall(ToolCall {
            name: name.to_owned(),
            arguments: "{}".to_owned(),
            input: Value::Object(serde_json::Map::new()),
        });
    }
    let last_user = request.messages.iter().rev().find(|m| m.role == "user");
    let text = last_user.map(|message| joined_text(message.content.as_ref()));
    match text {
        Some(text) if !text.is_empty() => Answer::Text(format!("Echo: {text}")),
        _ => Answer::Text(DEFAULT_REPLY.to_owned()),
    }
}

fn scripted_tool_call(scripted: &ToolCallDirective) -> ToolCall {
    let empty = || Value::Object(serde_json::Map::new());
    let (arguments, input) = match &scripted.arguments {
        None => ("{}".to_owned(), empty()),
        Some(Value::String(text)) => {
            let input = serde_json::from_str(text).unwrap_or_else(|_| empty());
            (text.clone(), input)
        }
        Some(object) => (object.to_string(), object.clone()),
    };
    ToolCall {
        name: scripted.name.clone(),
        arguments,
        input,
    }
}

/// The first declared tool, when the conversation ends with a user message saying "use tool".
///
/// Only the final message counts: once the agent has sent the tool result back, the conversation no
/// longer ends with that user message, so an agent loop gets a text answer instead of calling forever.
fn triggered_tool(request: &WireRequest) -> Option<&str> {
    let first_tool = request.tools.as_ref()?.first()?.name()?;
    let last = request.messages.last()?;
    let asks = last.role == "user"
        && joined_text(last.content.as_ref())
            .to_ascii_lowercase()
            .contains(TOOL_TRIGGER);
    asks.then_some(first_tool)
}

/// A message's text parts joined with single spaces.
fn joined_text(content: Option<&Content>) -> String {
    let mut joined = String::new();
    for text in content.into_iter().flat_map(Content::texts) {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(text);
    }
    joined
}

fn usage(request: &WireRequest, answer: &Answer) -> Usage {
    let scripted = request.mock.as_ref().and_then(|d| d.usage.as_ref());
    let input_tokens = scripted
        .and_then(|u| u.input_tokens)
        .unwrap_or_else(|| input_tokens(request));
    let output_tokens = scripted
        .and_then(|u| u.output_tokens)
        .unwrap_or_else(|| output_tokens(answer));
    Usage {
        input_tokens,
        output_tokens,
    }
}

/// max(1, characters of all message and system text / 4).
fn input_tokens(request: &WireRequest) -> u64 {
    let contents = request
        .messages
        .iter()
        .filter_map(|m| m.content.as_ref())
        .chain(request.system.as_ref());
    let chars: usize = contents
        .flat_map(Content::texts)
        .map(|text| text.chars().count())
        .sum();
    u64::try_from(chars / 4).unwrap_or(u64::MAX).max(1)
}

/// Words of a text reply; arguments length / 4 + 5 for a tool call.
fn output_tokens(answer: &Answer) -> u64 {
    let count = match answer {
        Answer::Text(text) => text.split_whitespace().count(),
        Answer::ToolCall(call) => call.arguments.chars().count() / 4 + 5,
    };
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// The reply cut into one piece per word, each piece keeping the whitespace that follows its word, so
/// the pieces concatenate to the reply exactly.
pub(crate) fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut word_seen = false;
    let mut after_space = false;
    for (at, c) in text.char_indices() {
        let space = c.is_whitespace();
        if !space && after_space && word_seen {
            pieces.push(&text[start..at]);
            start = at;
        }
        word_seen |= !space;
        after_space = space;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Tool-call arguments cut into at least two pieces (when there are two characters to cut), as the
/// providers stream them, so clients are tested on reassembling partial JSON.
pub(crate) fn json_pieces(json: &str) -> Vec<&str> {
    const PIECE: usize = 8;
    let size = if json.len() <= PIECE {
        json.len().div_ceil(2).max(1)
    } else {
        PIECE
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < json.len() {
        let mut end = (start + size).min(json.len());
        while !json.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&json[start..end]);
        start = end;
    }
    pieces
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed parse should fail the test")]
mod tests {
    use super::*;

    fn plan(body: &str) -> Plan {
        Plan::parse(body.as_bytes(), &MockConfig::default()).unwrap()
    }

    fn text(plan: &Plan) -> &str {
        match &plan.answer {
            Answer::Text(text) => text,
            Answer::ToolCall(call) => &call.name,
        }
    }

    #[test]
    fn reply_echoes_the_last_user_message_in_either_content_form() {
        let string = plan(
            r#"{"model":"m","messages":[{"role":"user","content":"first"},
            {"role":"assistant","content":"x"},{"role":"user","content":"hi there"}]}"#,
        );
        assert_eq!(text(&string), "Echo: hi there");
        let parts = plan(
            r#"{"model":"m","messages":[{"role":"user","content":[
            {"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}]}]}"#,
        );
        assert_eq!(text(&parts), "Echo: a b");
        let none = plan(r#"{"model":"m","messages":[{"role":"user","content":[]}]}"#);
        assert_eq!(text(&none), "Hello from mock");
    }

    #[test]
    fn token_counts_follow_the_documented_formula() {
        // 16 chars of message text + 4 of system text = 20 / 4 = 5; "Echo: 0123456789abcdef" is 2 words.
        let p = plan(
            r#"{"model":"m","system":"abcd","messages":[{"role":"user","content":"0123456789abcdef"}]}"#,
        );
        assert_eq!(
            p.usage,
            Usage {
                input_tokens: 5,
                output_tokens: 2
            }
        );
        assert_eq!(plan(r#"{"model":"m","messages":[]}"#).usage.input_tokens, 1);
    }

    #[test]
    fn use_tool_triggers_only_when_the_conversation_ends_with_that_request() {
        let tools = r#""tools":[{"type":"function","function":{"name":"lookup"}}]"#;
        let asked = plan(&format!(
            r#"{{"model":"m",{tools},"messages":[{{"role":"user","content":"please Use Tool now"}}]}}"#
        ));
        assert!(
            matches!(&asked.answer, Answer::ToolCall(c) if c.name == "lookup" && c.arguments == "{}")
        );
        assert_eq!(asked.usage.output_tokens, 5);
        let answered = plan(&format!(
            r#"{{"model":"m",{tools},"messages":[{{"role":"user","content":"use tool"}},
            {{"role":"tool","tool_call_id":"c","content":"sunny"}}]}}"#
        ));
        assert!(matches!(answered.answer, Answer::Text(_)));
    }

    #[test]
    fn mock_object_rejects_unknown_fields_and_bad_statuses() {
        let config = MockConfig::default();
        let typo = br#"{"model":"m","messages":[],"mock":{"latency":5}}"#;
        assert!(Plan::parse(typo, &config).is_err());
        let status = br#"{"model":"m","messages":[],"mock":{"status":42}}"#;
        assert!(Plan::parse(status, &config).is_err());
        assert!(Plan::parse(b"{not json", &config).is_err());
    }

    #[test]
    fn word_pieces_concatenate_to_the_text_one_word_each() {
        for text in [
            "Echo: hi there",
            "  lead",
            "a\n\nb  c ",
            "x",
            "Echo: héllo wörld",
        ] {
            let pieces = word_pieces(text);
            assert_eq!(pieces.concat(), text);
            assert_eq!(pieces.len(), text.split_whitespace().count(), "{text:?}");
        }
        assert_eq!(word_pieces("Echo: hi there"), ["Echo: ", "hi ", "there"]);
    }

    #[test]
    fn json_pieces_are_at_least_two_and_concatenate() {
        for json in ["{}", r#"{"city":"Paris"}"#, r#"{"q":"ééééééééé"}"#] {
            let pieces = json_pieces(json);
            assert!(pieces.len() >= 2, "{json}");
            assert_eq!(pieces.concat(), json);
        }
    }
}
