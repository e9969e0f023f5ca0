//! Upstream error bodies, reshaped into the client's dialect.
//!
//! An SDK only surfaces a provider's message when the error has the shape it expects, so a
//! failover that ends in an error must still speak the client's dialect. The message is kept
//! word for word; the type is derived from the HTTP status, which every dialect agrees on.

use serde_json::{Value, json};

use super::to_bytes;
use crate::Dialect;

/// What any dialect's error body says.
struct Failure {
    message: String,
    param: Option<Value>,
    code: Option<Value>,
}

/// Rewrites an upstream error body (`from`) for the client (`to`); any body, even one that is
/// not JSON, yields a well-formed error.
pub fn translate_error(from: Dialect, to: Dialect, status: u16, body: &[u8]) -> Vec<u8> {
    let failure = read(from, status, body);
    let value = match to {
        Dialect::OpenAi | Dialect::Responses => json!({"error": {
            "message": failure.message,
            "type": openai_type(status),
            "param": failure.param.unwrap_or(Value::Null),
            "code": failure.code.unwrap_or(Value::Null),
        }}),
        Dialect::Anthropic => json!({"type": "error", "error": {
            "type": anthropic_type(status),
            "message": failure.message,
        }}),
        Dialect::Gemini => json!({"error": {
            "code": status,
            "message": failure.message,
            "status": gemini_status(status),
        }}),
    };
    to_bytes(&value)
}

fn read(from: Dialect, status: u16, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| !e.is_null());
    let message = error
        .and_then(|e| match e {
            Value::String(s) => Some(s.clone()),
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body.trim_ascii());
            if text.is_empty() {
                format!("upstream returned HTTP {status}")
            } else {
                text.into_owned()
            }
        });
    let (param, code) = match from {
        // Only OpenAI-shaped errors carry a param and a string code worth keeping.
        Dialect::OpenAi | Dialect::Responses => (
            error
                .and_then(|e| e.get("param"))
                .filter(|p| !p.is_null())
                .cloned(),
            error
                .and_then(|e| e.get("code"))
                .filter(|c| !c.is_null())
                .cloned(),
        ),
        Dialect::Anthropic | Dialect::Gemini => (None, None),
    };
    Failure {
        message,
        param,
        code,
    }
}

fn openai_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    }
}

fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    }
}

fn gemini_status(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500.. => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    }
}
