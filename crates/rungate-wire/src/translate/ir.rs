//! The intermediate representation every dialect is read into and written from.
//!
//! It is deliberately small: a field belongs here only when at least two dialects can express it
//! and a failover would change the call's meaning without it. Tool-call arguments stay JSON text
//! (as OpenAI sends them) because streams deliver them in fragments that are not JSON on their
//! own; dialects that want an object parse them when writing.

use serde_json::{Number, Value};

use crate::Usage;

/// A request, from any dialect.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Request {
    /// System / developer instructions, in order (one entry per message or text block).
    pub(crate) system: Vec<String>,
    pub(crate) messages: Vec<Message>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) tool_choice: Option<ToolChoice>,
    pub(crate) sampling: Sampling,
    pub(crate) stream: bool,
}

/// Generation limits and knobs. Numbers stay `serde_json::Number` so `0.7` is written as `0.7`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Sampling {
    pub(crate) temperature: Option<Number>,
    pub(crate) top_p: Option<Number>,
    pub(crate) top_k: Option<Number>,
    pub(crate) stop: Vec<String>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) parallel_tool_calls: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Assistant,
}

/// One turn. Tool results are parts of a user turn (as in Anthropic and Gemini); OpenAI's
/// `tool` messages and Responses' `function_call_output` items are read into that shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub(crate) role: Role,
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Image(Image),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Image {
    Url(String),
    Base64 { media_type: String, data: String },
}

impl Image {
    /// Reads an OpenAI-style image URL: a base64 `data:` URL becomes inline data.
    pub(crate) fn from_url(url: &str) -> Image {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return Image::Base64 {
                        media_type: media_type.to_owned(),
                        data: data.to_owned(),
                    };
                }
            }
        }
        Image::Url(url.to_owned())
    }

    /// The OpenAI-style URL: inline data as a `data:` URL.
    pub(crate) fn to_url(&self) -> String {
        match self {
            Image::Url(url) => url.clone(),
            Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// JSON text of the arguments object.
    pub(crate) arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolResult {
    pub(crate) id: String,
    /// The result as text (the dialects agree on text; images in results are dropped).
    pub(crate) content: String,
    pub(crate) is_error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tool {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// JSON Schema of the arguments object.
    pub(crate) parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Any,
    /// This tool must be called.
    Tool(String),
}

/// A non-streaming answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) id: Option<String>,
    /// Text and tool calls, in order.
    pub(crate) parts: Vec<Part>,
    pub(crate) stop: Option<Stop>,
    pub(crate) usage: Option<TokenUsage>,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    EndTurn,
    MaxTokens,
    ToolUse,
    Sequence,
    ContentFilter,
    Other,
}

/// Tokens, normalised: `input` is every input token (cache reads and writes included), `output`
/// every output token (reasoning included). Each writer subtracts what its dialect counts apart.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenUsage {
    pub(crate) input: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_write: u64,
    pub(crate) output: u64,
    pub(crate) reasoning: u64,
}

impl TokenUsage {
    pub(crate) fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Input tokens that were neither read from nor written to the cache (Anthropic's
    /// `input_tokens`).
    pub(crate) fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write)
    }

    pub(crate) fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self.input,
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
        }
    }
}

/// Consecutive turns of the same role, merged: Anthropic and Gemini want tool results in the
/// single user turn after the call, and alternate roles.
pub(crate) fn merged(messages: &[Message]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for message in messages {
        match out.last_mut() {
            Some(last) if last.role == message.role => {
                last.parts.extend(message.parts.iter().cloned());
            }
            _ => out.push(message.clone()),
        }
    }
    out
}

/// Appends parts to the last turn when it has this role, else starts a turn.
pub(crate) fn push_parts(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => messages.push(Message { role, parts }),
    }
}

/// Parses tool-call arguments into the object Anthropic and Gemini want; empty text is `{}`.
pub(crate) fn arguments_object(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}
