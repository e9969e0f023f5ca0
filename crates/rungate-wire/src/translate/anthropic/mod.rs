//! Anthropic Messages (`/v1/messages`) to and from the IR.

pub(crate) mod answer;
pub(crate) mod request;
pub(crate) mod stream;

use serde_json::{Value, json};

use super::ir::{Stop, TokenUsage};
use super::read::count;

/// Anthropic's `input_tokens` leaves out cache reads and writes; the IR's input counts them.
pub(crate) fn read_usage(usage: &Value) -> TokenUsage {
    let uncached = count(usage.get("input_tokens"));
    let cache_read = count(usage.get("cache_read_input_tokens"));
    let cache_write = count(usage.get("cache_creation_input_tokens"));
    TokenUsage {
        input: uncached
            .saturating_add(cache_read)
            .saturating_add(cache_write),
        cache_read,
        cache_write,
        output: count(usage.get("output_tokens")),
        reasoning: 0,
    }
}

pub(crate) fn write_usage(usage: &TokenUsage) -> Value {
    json!({
        "input_tokens": usage.uncached_input(),
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output,
    })
}

pub(crate) fn read_stop(reason: &str) -> Stop {
    match reason {
        "end_turn" | "pause_turn" => Stop::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => Stop::MaxTokens,
        "tool_use" => Stop::ToolUse,
        "stop_sequence" => Stop::Sequence,
        "refusal" => Stop::ContentFilter,
        _ => Stop::Other,
    }
}

pub(crate) fn write_stop(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn | Stop::Other => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
        Stop::Sequence => "stop_sequence",
        Stop::ContentFilter => "refusal",
    }
}
