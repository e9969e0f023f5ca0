//! OpenAI Responses (`/v1/responses`) to and from the IR, statelessly: a request that points
//! at stored state (`previous_response_id`, `conversation`, item references) cannot be sent to
//! another provider and is refused.

pub(crate) mod answer;
pub(crate) mod request;
pub(crate) mod stream;

use serde_json::{Value, json};

use super::ir::{Stop, TokenUsage};

/// Counted as Chat Completions counts, under the names `input_tokens` and `output_tokens`.
pub(crate) fn read_usage(usage: &Value) -> TokenUsage {
    super::openai::read_usage_named(usage, "input_tokens", "output_tokens")
}

pub(crate) fn write_usage(usage: &TokenUsage) -> Value {
    json!({
        "input_tokens": usage.input,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.total(),
    })
}

/// A response's `status` and `incomplete_details`, from the stop reason.
pub(crate) fn write_status(stop: Option<Stop>) -> (&'static str, Value) {
    match stop {
        Some(Stop::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(Stop::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        Some(Stop::EndTurn | Stop::ToolUse | Stop::Sequence | Stop::Other) | None => {
            ("completed", Value::Null)
        }
    }
}

/// The stop reason a response's `status` implies.
pub(crate) fn read_status(response: &Value, called_tools: bool) -> Stop {
    let reason = response
        .get("incomplete_details")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    match (response.get("status").and_then(Value::as_str), reason) {
        (Some("incomplete"), Some("content_filter")) => Stop::ContentFilter,
        (Some("incomplete"), _) => Stop::MaxTokens,
        (Some("failed" | "cancelled"), _) => Stop::Other,
        _ if called_tools => Stop::ToolUse,
        _ => Stop::EndTurn,
    }
}

pub(crate) fn message_item(id: &str, status: &str, text: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "text": text}],
    })
}

pub(crate) fn call_item(id: &str, status: &str, call_id: &str, name: &str, args: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": args,
    })
}

/// The `response` object of an answer or of a stream's lifecycle events.
pub(crate) fn response_object(
    id: &str,
    created: u64,
    model: &str,
    stop: Option<Stop>,
    output: Vec<Value>,
    usage: Option<&TokenUsage>,
    in_progress: bool,
) -> Value {
    let (status, incomplete) = if in_progress {
        ("in_progress", Value::Null)
    } else {
        write_status(stop)
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": usage.map_or(Value::Null, write_usage),
    })
}
