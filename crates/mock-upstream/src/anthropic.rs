//! Anthropic's Messages and token-counting endpoints, in the shapes the official SDKs parse.
//!
//! A streamed answer follows Anthropic's event grammar exactly (`message_start`, `content_block_start`,
//! `ping`, deltas, `content_block_stop`, `message_delta`, `message_stop`), with input tokens known from
//! the first event and the final output count only in `message_delta`: the layout a gateway must read
//! to settle a run's cost, and to bill something for a stream that dies halfway.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::auth;
use crate::conversation::{self, Conversation};
use crate::dialect::{self, Dialect, SharedState};
use crate::plan::{self, Answer, BadRequest, Plan, Usage};
use crate::sse;

pub(crate) struct Anthropic;

/// `POST /v1/messages`
pub(crate) async fn post_messages(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dialect::answer(&Anthropic, &shared, &headers, &body).await
}

/// `POST /v1/messages/count_tokens`: the same input count a reply to this body would report.
pub(crate) async fn post_count_tokens(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = shared.next_id();
    match dialect::admit(&Anthropic, &shared, &headers, &body, id).await {
        Ok(plan) => {
            let mut out = Vec::with_capacity(32);
            let count = TokenCount {
                input_tokens: plan.usage.input_tokens,
            };
            sse::write_json(&mut out, &count);
            dialect::json(StatusCode::OK, out, id)
        }
        Err(refusal) => refusal,
    }
}

impl Dialect for Anthropic {
    const BAD_KEY_MESSAGE: &'static str = "invalid x-api-key";

    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        auth::api_key_matches(headers, key)
    }

    fn read(&self, body: &[u8]) -> Result<Conversation, BadRequest> {
        conversation::from_chat(body)
    }

    fn error_body(&self, status: StatusCode, message: &str) -> Vec<u8> {
        let kind = match status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        let document = ErrorDocument {
            kind: "error",
            error: ErrorBody { kind, message },
        };
        let mut out = Vec::with_capacity(128);
        sse::write_json(&mut out, &document);
        out
    }

    fn reply_body(&self, plan: &Plan, id: u64) -> Vec<u8> {
        let message_id = format!("msg_mock_{id}");
        let tool_id = format!("toolu_mock_{id}");
        let (block, stop_reason) = match &plan.answer {
            Answer::Text(text) => (Block::Text { text }, "end_turn"),
            Answer::ToolCall(call) => (
                Block::ToolUse {
                    id: &tool_id,
                    name: &call.name,
                    input: &call.input,
                },
                "tool_use",
            ),
        };
        let message = WireMessage {
            id: &message_id,
            kind: "message",
            role: "assistant",
            model: &plan.model,
            content: std::slice::from_ref(&block),
            stop_reason: Some(stop_reason),
            stop_sequence: (),
            usage: WireUsage::from(plan.usage),
        };
        let mut out = Vec::with_capacity(512);
        sse::write_json(&mut out, &message);
        out
    }

    fn reply_events(&self, plan: &Plan, id: u64) -> Vec<Bytes> {
        let message_id = format!("msg_mock_{id}");
        let opening = WireMessage {
            id: &message_id,
            kind: "message",
            role: "assistant",
            model: &plan.model,
            content: &[],
            stop_reason: None,
            stop_sequence: (),
            // Anthropic reports the input up front and a token of output so far.
            usage: WireUsage::from(Usage {
                input_tokens: plan.usage.input_tokens,
                output_tokens: 1,
            }),
        };
        let mut events = Vec::with_capacity(16);
        events.push(event(&Event::MessageStart { message: opening }));
        match &plan.answer {
            Answer::Text(text) => text_events(text, &mut events),
            Answer::ToolCall(call) => {
                let tool_id = format!("toolu_mock_{id}");
                tool_use_events(&tool_id, call, &mut events);
            }
        }
        events.push(event(&Event::ContentBlockStop { index: 0 }));
        let stop_reason = match plan.answer {
            Answer::Text(_) => "end_turn",
            Answer::ToolCall(_) => "tool_use",
        };
        events.push(event(&Event::MessageDelta {
            delta: StopDelta {
                stop_reason,
                stop_sequence: (),
            },
            usage: OutputUsage {
                output_tokens: plan.usage.output_tokens,
            },
        }));
        events.push(event(&Event::MessageStop));
        events
    }
}

fn text_events(text: &str, events: &mut Vec<Bytes>) {
    let block = Block::Text { text: "" };
    events.push(event(&Event::ContentBlockStart {
        index: 0,
        content_block: block,
    }));
    events.push(event(&Event::Ping));
    for piece in plan::word_pieces(text) {
        let delta = BlockDelta::TextDelta { text: piece };
        events.push(event(&Event::ContentBlockDelta { index: 0, delta }));
    }
}

fn tool_use_events(tool_id: &str, call: &plan::ToolCall, events: &mut Vec<Bytes>) {
    let empty = Value::Object(serde_json::Map::new());
    let block = Block::ToolUse {
        id: tool_id,
        name: &call.name,
        input: &empty,
    };
    events.push(event(&Event::ContentBlockStart {
        index: 0,
        content_block: block,
    }));
    events.push(event(&Event::Ping));
    for piece in plan::json_pieces(&call.arguments) {
        let delta = BlockDelta::InputJsonDelta {
            partial_json: piece,
        };
        events.push(event(&Event::ContentBlockDelta { index: 0, delta }));
    }
}

fn event(event: &Event<'_>) -> Bytes {
    sse::named_event(event.name(), event)
}

#[derive(Serialize)]
struct TokenCount {
    input_tokens: u64,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [Block<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: (),
    usage: WireUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<Usage> for WireUsage {
    fn from(usage: Usage) -> Self {
        WireUsage {
            input_tokens: usage.input_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            output_tokens: usage.output_tokens,
        }
    }
}

/// One streamed event; its `type` field doubles as the SSE `event:` name.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: WireMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}
