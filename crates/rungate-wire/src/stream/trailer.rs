//! The SSE events Rungate itself writes into a client's stream: the `rungate` trailer after the
//! provider's last event, and an error event in the client's dialect when the upstream dies
//! mid-stream (once a stream has started, an HTTP status can no longer say it).

use bytes::Bytes;
use serde::Serialize;

use crate::Dialect;

/// What Rungate tells a streaming client about the call once the provider is done.
#[derive(Debug, Clone, Serialize)]
pub struct RungateTrailer {
    pub run_id: String,
    pub step_id: String,
    pub provider: String,
    pub model: String,
    pub cost_usd: f64,
    pub tokens: TrailerTokens,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrailerTokens {
    pub input: u64,
    pub output: u64,
}

/// The trailing event Rungate appends: `event: rungate\ndata: <json>\n\n`.
pub fn rungate_event(trailer: &RungateTrailer) -> Bytes {
    sse_event(Some("rungate"), trailer)
}

/// An error event in the client's dialect, sent when the upstream dies mid-stream.
/// OpenAI: `data: {"error":{"message":..,"type":"provider_error","code":<code>}}\n\n`;
/// Anthropic: `event: error\ndata: {"type":"error","error":{"type":"api_error","message":..,
/// "code":<code>}}\n\n`; Responses: `event: error\ndata: {"type":"error","code":<code>,
/// "message":..,"param":null}\n\n` (the stream's own error event; its `sequence_number` is
/// left out, as Rungate does not number the provider's events);
/// Gemini: `data: {"error":{"code":500,"message":..,"status":"INTERNAL","details":[ErrorInfo
/// with reason <code>, domain "rungate"]}}\n\n` (Google's error object; the HTTP-style code and
/// canonical status follow Rungate's code, see [`google_status`]).
pub fn stream_error_event(dialect: Dialect, code: &str, message: &str) -> Bytes {
    #[derive(Serialize)]
    struct OpenAiBody<'a> {
        error: OpenAiError<'a>,
    }
    #[derive(Serialize)]
    struct OpenAiError<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        code: &'a str,
    }
    #[derive(Serialize)]
    struct AnthropicBody<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: AnthropicError<'a>,
    }
    #[derive(Serialize)]
    struct AnthropicError<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
        code: &'a str,
    }
    #[derive(Serialize)]
    struct ResponsesError<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        code: &'a str,
        message: &'a str,
        param: Option<&'a str>,
    }
    match dialect {
        Dialect::Responses => sse_event(
            Some("error"),
            &ResponsesError {
                kind: "error",
                code,
                message,
                param: None,
            },
        ),
        Dialect::Gemini => sse_event(None, &GoogleBody::new(code, message)),
        Dialect::OpenAi => sse_event(
            None,
            &OpenAiBody {
                error: OpenAiError {
                    message,
                    kind: "provider_error",
                    code,
                },
            },
        ),
        Dialect::Anthropic => sse_event(
            Some("error"),
            &AnthropicBody {
                kind: "error",
                error: AnthropicError {
                    kind: "api_error",
                    message,
                    code,
                },
            },
        ),
    }
}

/// Google's error envelope: `{"error":{"code","message","status","details"}}`.
#[derive(Serialize)]
struct GoogleBody<'a> {
    error: GoogleError<'a>,
}

#[derive(Serialize)]
struct GoogleError<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
    details: [ErrorInfo<'a>; 1],
}

/// `google.rpc.ErrorInfo`, where Google puts a machine-readable reason: Rungate's code.
#[derive(Serialize)]
struct ErrorInfo<'a> {
    #[serde(rename = "@type")]
    kind: &'static str,
    reason: &'a str,
    domain: &'static str,
}

impl<'a> GoogleBody<'a> {
    fn new(code: &'a str, message: &'a str) -> Self {
        let (http, status) = google_status(code);
        GoogleBody {
            error: GoogleError {
                code: http,
                message,
                status,
                details: [ErrorInfo {
                    kind: "type.googleapis.com/google.rpc.ErrorInfo",
                    reason: code,
                    domain: "rungate",
                }],
            },
        }
    }
}

/// The HTTP-style code and canonical status Google's clients expect for a Rungate error code:
/// a provider timeout is `DEADLINE_EXCEEDED`, a spending or rate limit that cut the stream is
/// `RESOURCE_EXHAUSTED`, anything else (a provider failure; Google has no "bad gateway") is
/// `INTERNAL`.
fn google_status(code: &str) -> (u16, &'static str) {
    match code {
        "provider_timeout" => (504, "DEADLINE_EXCEEDED"),
        "rate_limited" | "budget_exceeded" | "token_budget_exceeded" | "hourly_cost_exceeded" => {
            (429, "RESOURCE_EXHAUSTED")
        }
        _ => (500, "INTERNAL"),
    }
}

/// One SSE event with a JSON payload. The payloads here are plain structs of strings and
/// numbers, which serde_json always serializes (non-finite floats become `null`), so the `{}`
/// fallback only keeps the frame valid should that ever change.
fn sse_event(name: Option<&str>, payload: &impl Serialize) -> Bytes {
    let json = serde_json::to_vec(payload).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Vec::with_capacity(json.len() + 32);
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
