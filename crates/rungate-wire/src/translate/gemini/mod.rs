//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse` to and from the IR.
//!
//! Gemini names neither answers' tool calls nor results: calls get synthesized ids
//! (`call_<responseId>_<n>`, or `call_<n>` without a response id) so that a client can pair its
//! results with them, and results are written back with the name of the call they answer.

pub(crate) mod answer;
pub(crate) mod request;
pub(crate) mod stream;

use serde_json::{Map, Value};

use super::ir::{Stop, TokenUsage};
use super::read::{count, get_camel};

/// `promptTokenCount` includes the cached content; `candidatesTokenCount` leaves out the
/// thoughts, which are output all the same.
pub(crate) fn read_usage(usage: &Value) -> TokenUsage {
    let thoughts = count(get_camel(usage, "thoughtsTokenCount"));
    TokenUsage {
        input: count(get_camel(usage, "promptTokenCount")),
        cache_read: count(get_camel(usage, "cachedContentTokenCount")),
        cache_write: 0,
        output: count(get_camel(usage, "candidatesTokenCount")).saturating_add(thoughts),
        reasoning: thoughts,
    }
}

pub(crate) fn write_usage(usage: &TokenUsage) -> Value {
    let mut object = Map::new();
    object.insert("promptTokenCount".to_owned(), Value::from(usage.input));
    object.insert(
        "candidatesTokenCount".to_owned(),
        Value::from(usage.output.saturating_sub(usage.reasoning)),
    );
    object.insert("totalTokenCount".to_owned(), Value::from(usage.total()));
    if usage.cache_read > 0 {
        object.insert(
            "cachedContentTokenCount".to_owned(),
            Value::from(usage.cache_read),
        );
    }
    if usage.reasoning > 0 {
        object.insert(
            "thoughtsTokenCount".to_owned(),
            Value::from(usage.reasoning),
        );
    }
    Value::Object(object)
}

/// Gemini says `STOP` after a function call too; the caller turns that into a tool-use stop.
pub(crate) fn read_stop(reason: &str, called_tools: bool) -> Stop {
    match reason {
        "STOP" if called_tools => Stop::ToolUse,
        "STOP" => Stop::EndTurn,
        "MAX_TOKENS" => Stop::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => Stop::ContentFilter,
        _ => Stop::Other,
    }
}

pub(crate) fn write_stop(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn | Stop::ToolUse | Stop::Sequence => "STOP",
        Stop::MaxTokens => "MAX_TOKENS",
        Stop::ContentFilter => "SAFETY",
        Stop::Other => "OTHER",
    }
}

/// The id of the `n`th call (0-based) of an answer.
pub(crate) fn call_id(response_id: Option<&str>, n: usize) -> String {
    match response_id {
        Some(id) if !id.is_empty() => format!("call_{id}_{n}"),
        _ => format!("call_{n}"),
    }
}
