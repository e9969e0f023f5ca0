//! OpenAI Chat Completions (`/v1/chat/completions`) to and from the IR.

pub(crate) mod answer;
pub(crate) mod request;
pub(crate) mod stream;

use serde_json::{Value, json};

use super::ir::{Stop, TokenUsage};
use super::read::count;

/// `prompt_tokens` already includes the cached tokens; `completion_tokens` the reasoning.
pub(crate) fn read_usage(usage: &Value) -> TokenUsage {
    read_usage_named(usage, "prompt_tokens", "completion_tokens")
}

/// Usage as both OpenAI APIs count it, whatever they call the two counts: `input` (cached
/// included, the cached part in `{input}_details.cached_tokens`) and `output` (reasoning
/// included, that part in `{output}_details.reasoning_tokens`).
pub(crate) fn read_usage_named(usage: &Value, input: &str, output: &str) -> TokenUsage {
    let detail = |count_key: &str, detail_key: &str| {
        let details = usage.get(format!("{count_key}_details").as_str());
        count(details.and_then(|d| d.get(detail_key)))
    };
    TokenUsage {
        input: count(usage.get(input)),
        cache_read: detail(input, "cached_tokens"),
        cache_write: 0,
        output: count(usage.get(output)),
        reasoning: detail(output, "reasoning_tokens"),
    }
}

pub(crate) fn write_usage(usage: &TokenUsage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.total(),
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    })
}

pub(crate) fn read_stop(reason: &str) -> Stop {
    match reason {
        "stop" => Stop::EndTurn,
        "length" => Stop::MaxTokens,
        "tool_calls" | "function_call" => Stop::ToolUse,
        "content_filter" => Stop::ContentFilter,
        _ => Stop::Other,
    }
}

/// OpenAI has no separate "stop sequence" or "other" reason: both are a plain `stop`.
pub(crate) fn write_stop(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn | Stop::Sequence | Stop::Other => "stop",
        Stop::MaxTokens => "length",
        Stop::ToolUse => "tool_calls",
        Stop::ContentFilter => "content_filter",
    }
}
