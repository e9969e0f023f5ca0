//! What one request asks the mock to do: the reply, the usage to report, the timing, and any
//! scripted failure, decided on the neutral [`Conversation`] every dialect's reader produces.
//!
//! The script comes from two places: the body's `"mock"` object and the server's default
//! ([`MockConfig::default_script`]). They merge member by member, the request's members winning, and
//! the result is read strictly: a typo in a test script fails loudly with a 400 (or, in the default,
//! refuses to start the server) instead of being silently ignored.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::MockConfig;
use crate::conversation::{Conversation, Turn};

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
    /// Request members the dialect repeats in its answer.
    pub(crate) echo: Vec<(&'static str, Value)>,
}

impl Plan {
    /// The request's value of an echoed member, if it sent one.
    pub(crate) fn echoed(&self, name: &str) -> Option<&Value> {
        self.echo
            .iter()
            .find(|(member, _)| *member == name)
            .map(|(_, value)| value)
    }
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
    /// The arguments as an object: Anthropic's `input`, Gemini's `args`.
    pub(crate) input: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

/// A `"mock"` object: how a test scripts a request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Directives {
    latency_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    usage: Option<UsageOverride>,
    status: Option<u16>,
    die_after_events: Option<usize>,
    hang: Option<bool>,
    tool_call: Option<ToolCallDirective>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageOverride {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallDirective {
    name: String,
    /// An object, or a string sent verbatim as the arguments text (to script malformed arguments).
    #[serde(default)]
    arguments: Option<Value>,
}

impl Directives {
    fn from_members(members: Map<String, Value>) -> Result<Directives, BadRequest> {
        let directives = Directives::deserialize(Value::Object(members))
            .map_err(|error| BadRequest(format!("mock: {error}")))?;
        directives.status()?;
        Ok(directives)
    }

    fn status(&self) -> Result<Option<StatusCode>, BadRequest> {
        self.status
            .map(|code| {
                StatusCode::from_u16(code)
                    .map_err(|_| BadRequest(format!("mock.status {code} is not an HTTP status")))
            })
            .transpose()
    }
}

/// The server-wide default script, checked once when the server starts.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    members: Map<String, Value>,
    directives: Directives,
}

impl Script {
    /// Check a default script: an object with the `"mock"` object's fields.
    pub(crate) fn parse(value: &Value) -> Result<Script, String> {
        let Value::Object(members) = value else {
            return Err(format!(
                "the default script must be a JSON object, not {value}"
            ));
        };
        let directives = Directives::from_members(members.clone())
            .map_err(|BadRequest(message)| format!("default script: {message}"))?;
        Ok(Script {
            members: members.clone(),
            directives,
        })
    }
}

/// The request's script merged over the default: the request's members replace the default's of the
/// same name (a member set to `null` clears the default's), whole values, no deep merge.
fn directives(
    request: Option<Map<String, Value>>,
    default: Option<&Script>,
) -> Result<Directives, BadRequest> {
    match (request, default) {
        (None, None) => Ok(Directives::default()),
        (None, Some(default)) => Ok(default.directives.clone()),
        (Some(request), None) => Directives::from_members(request),
        (Some(request), Some(default)) => {
            let mut members = default.members.clone();
            members.extend(request);
            Directives::from_members(members)
        }
    }
}

impl Plan {
    pub(crate) fn new(
        conversation: Conversation,
        config: &MockConfig,
        default_script: Option<&Script>,
    ) -> Result<Plan, BadRequest> {
        let mut conversation = conversation;
        let directives = directives(conversation.script.take(), default_script)?;
        let answer = answer(&conversation, &directives);
        let usage = usage(&conversation, &directives, &answer);
        let millis =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        Ok(Plan {
            stream: conversation.stream,
            include_usage: conversation.include_usage,
            latency: millis(directives.latency_ms, config.latency),
            chunk_delay: millis(directives.chunk_delay_ms, config.chunk_delay),
            status: directives.status()?,
            die_after_events: directives.die_after_events,
            hang: directives.hang.unwrap_or(false),
            answer,
            usage,
            model: conversation.model,
            echo: conversation.echo,
        })
    }
}

fn answer(conversation: &Conversation, directives: &Directives) -> Answer {
    if let Some(scripted) = &directives.tool_call {
        return Answer::ToolCall(scripted_tool_call(scripted));
    }
    if let Some(name) = triggered_tool(conversation) {
        return Answer::ToolCall(ToolCall {
            name: name.to_owned(),
            arguments: "{}".to_owned(),
            input: Value::Object(Map::new()),
        });
    }
    let last_user = conversation.turns.iter().rev().find(|turn| turn.from_user);
    let text = last_user.map(Turn::joined);
    match text {
        Some(text) if !text.is_empty() => Answer::Text(format!("Echo: {text}")),
        _ => Answer::Text(DEFAULT_REPLY.to_owned()),
    }
}

fn scripted_tool_call(scripted: &ToolCallDirective) -> ToolCall {
    let empty = || Value::Object(Map::new());
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
/// Only the final turn counts: once the agent has sent the tool result back, the conversation no
/// longer ends with that user message, so an agent loop gets a text answer instead of calling forever.
fn triggered_tool(conversation: &Conversation) -> Option<&str> {
    let first_tool = conversation.first_tool.as_deref()?;
    let last = conversation.turns.last()?;
    let asks = last.from_user && last.joined().to_ascii_lowercase().contains(TOOL_TRIGGER);
    asks.then_some(first_tool)
}

fn usage(conversation: &Conversation, directives: &Directives, answer: &Answer) -> Usage {
    let scripted = directives.usage.as_ref();
    let input_tokens = scripted
        .and_then(|u| u.input_tokens)
        .unwrap_or_else(|| input_tokens(conversation));
    let output_tokens = scripted
        .and_then(|u| u.output_tokens)
        .unwrap_or_else(|| output_tokens(answer));
    Usage {
        input_tokens,
        output_tokens,
    }
}

/// max(1, characters of all message and system text / 4).
fn input_tokens(conversation: &Conversation) -> u64 {
    let texts = conversation
        .turns
        .iter()
        .flat_map(|turn| &turn.texts)
        .chain(&conversation.system);
    let chars: usize = texts.map(|text| text.chars().count()).sum();
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

    fn parse(body: &[u8], default: Option<&Script>) -> Result<Plan, BadRequest> {
        let conversation = crate::conversation::from_chat(body)?;
        Plan::new(conversation, &MockConfig::default(), default)
    }

    fn plan(body: &str) -> Plan {
        parse(body.as_bytes(), None).unwrap()
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
        let typo = br#"{"model":"m","messages":[],"mock":{"latency":5}}"#;
        assert!(parse(typo, None).is_err());
        let status = br#"{"model":"m","messages":[],"mock":{"status":42}}"#;
        assert!(parse(status, None).is_err());
        assert!(parse(b"{not json", None).is_err());
        assert!(Script::parse(&serde_json::json!({"status": 42})).is_err());
        assert!(Script::parse(&serde_json::json!({"latency": 5})).is_err());
        assert!(Script::parse(&serde_json::json!([])).is_err());
    }

    #[test]
    fn request_script_wins_over_the_default_member_by_member() {
        let default = Script::parse(&serde_json::json!({"status": 500, "latency_ms": 7})).unwrap();
        let only_default = parse(br#"{"model":"m"}"#, Some(&default)).unwrap();
        assert_eq!(only_default.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(only_default.latency, Duration::from_millis(7));

        let overridden = br#"{"model":"m","mock":{"status":429}}"#;
        let overridden = parse(overridden, Some(&default)).unwrap();
        assert_eq!(overridden.status, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(
            overridden.latency,
            Duration::from_millis(7),
            "kept from the default"
        );

        let cleared = parse(br#"{"model":"m","mock":{"status":null}}"#, Some(&default)).unwrap();
        assert_eq!(cleared.status, None);
        let typo = br#"{"model":"m","mock":{"stauts":1}}"#;
        assert!(parse(typo, Some(&default)).is_err());
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
