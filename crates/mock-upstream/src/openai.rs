//! OpenAI's Chat Completions and Models endpoints, in the shapes the official SDKs parse.
//!
//! The field set follows what api.openai.com sends today (including the zeroed token-detail objects
//! and `"usage": null` on chunks when usage was asked for), so a gateway's usage extraction is tested
//! against the real layout rather than a minimal one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::auth;
use crate::conversation::{self, Conversation};
use crate::dialect::{self, Dialect, SharedState};
use crate::plan::{self, Answer, BadRequest, Plan, Usage};
use crate::sse;

const SYSTEM_FINGERPRINT: &str = "fp_mock";
const SERVICE_TIER: &str = "default";

/// `GET /v1/models`: a fixed list, stable across runs.
const MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"mock"},{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"mock"},{"id":"gpt-4.1","object":"model","created":1744316542,"owned_by":"mock"},{"id":"gpt-4.1-mini","object":"model","created":1744318173,"owned_by":"mock"},{"id":"o3-mini","object":"model","created":1737146383,"owned_by":"mock"}]}"#;

pub(crate) struct OpenAi;

/// `POST /v1/chat/completions`
pub(crate) async fn post_chat_completions(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dialect::answer(&OpenAi, &shared, &headers, &body).await
}

/// `GET /v1/models`
pub(crate) async fn get_models(State(shared): SharedState, headers: HeaderMap) -> Response {
    let id = shared.next_id();
    let config = &shared.config;
    dialect::pause(config.latency).await;
    let wrong_key = config
        .require_key
        .as_deref()
        .is_some_and(|key| !OpenAi.key_matches(&headers, key));
    if wrong_key {
        return dialect::bad_key(&OpenAi, id);
    }
    dialect::json(StatusCode::OK, MODELS.as_bytes().to_vec(), id)
}

impl Dialect for OpenAi {
    const BAD_KEY_MESSAGE: &'static str = "Incorrect API key provided";

    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        auth::bearer_matches(headers, key)
    }

    fn read(&self, body: &[u8]) -> Result<Conversation, BadRequest> {
        conversation::from_chat(body)
    }

    fn error_body(&self, status: StatusCode, message: &str) -> Vec<u8> {
        error_body(status, message)
    }

    fn reply_body(&self, plan: &Plan, id: u64) -> Vec<u8> {
        reply_body(plan, id)
    }

    fn reply_events(&self, plan: &Plan, id: u64) -> Vec<Bytes> {
        reply_events(plan, id)
    }
}

/// OpenAI's error document, shared by Chat Completions and Responses.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Vec<u8> {
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let document = ErrorDocument {
        error: ErrorBody {
            message,
            kind,
            param: (),
            code,
        },
    };
    let mut out = Vec::with_capacity(160);
    sse::write_json(&mut out, &document);
    out
}

fn reply_body(plan: &Plan, id: u64) -> Vec<u8> {
    let completion_id = format!("chatcmpl-mock-{id}");
    let call_id = format!("call_mock_{id}");
    let (content, tool_calls, finish_reason) = match &plan.answer {
        Answer::Text(text) => (Some(text.as_str()), None, "stop"),
        Answer::ToolCall(call) => {
            let tool_call = WireToolCall {
                id: &call_id,
                kind: "function",
                function: WireFunction {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            };
            (None, Some([tool_call]), "tool_calls")
        }
    };
    let completion = Completion {
        id: &completion_id,
        object: "chat.completion",
        created: dialect::unix_now(),
        model: &plan.model,
        choices: [Choice {
            index: 0,
            message: Message {
                role: "assistant",
                content,
                refusal: (),
                tool_calls,
                annotations: [],
            },
            logprobs: (),
            finish_reason,
        }],
        usage: WireUsage::from(plan.usage),
        service_tier: SERVICE_TIER,
        system_fingerprint: SYSTEM_FINGERPRINT,
    };
    let mut out = Vec::with_capacity(768);
    sse::write_json(&mut out, &completion);
    out
}

fn reply_events(plan: &Plan, id: u64) -> Vec<Bytes> {
    let completion_id = format!("chatcmpl-mock-{id}");
    let chunks = Chunks {
        id: &completion_id,
        created: dialect::unix_now(),
        model: &plan.model,
        include_usage: plan.include_usage,
    };
    let mut events = Vec::with_capacity(16);
    match &plan.answer {
        Answer::Text(text) => text_events(&chunks, text, &mut events),
        Answer::ToolCall(call) => {
            let call_id = format!("call_mock_{id}");
            tool_call_events(&chunks, &call_id, call, &mut events);
        }
    }
    if plan.include_usage {
        events.push(chunks.usage(plan.usage));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn text_events(chunks: &Chunks<'_>, text: &str, events: &mut Vec<Bytes>) {
    let role = Delta {
        role: Some("assistant"),
        content: Some(Some("")),
        refusal: Some(()),
        ..Delta::default()
    };
    events.push(chunks.chunk(role, None));
    for piece in plan::word_pieces(text) {
        let delta = Delta {
            content: Some(Some(piece)),
            ..Delta::default()
        };
        events.push(chunks.chunk(delta, None));
    }
    events.push(chunks.chunk(Delta::default(), Some("stop")));
}

fn tool_call_events(
    chunks: &Chunks<'_>,
    call_id: &str,
    call: &plan::ToolCall,
    events: &mut Vec<Bytes>,
) {
    let opening = Delta {
        role: Some("assistant"),
        content: Some(None),
        refusal: Some(()),
        tool_calls: Some([DeltaToolCall {
            index: 0,
            id: Some(call_id),
            kind: Some("function"),
            function: DeltaFunction {
                name: Some(&call.name),
                arguments: "",
            },
        }]),
    };
    events.push(chunks.chunk(opening, None));
    for piece in plan::json_pieces(&call.arguments) {
        let delta = Delta {
            tool_calls: Some([DeltaToolCall {
                index: 0,
                id: None,
                kind: None,
                function: DeltaFunction {
                    name: None,
                    arguments: piece,
                },
            }]),
            ..Delta::default()
        };
        events.push(chunks.chunk(delta, None));
    }
    events.push(chunks.chunk(Delta::default(), Some("tool_calls")));
}

/// What every chunk of one streamed completion repeats.
struct Chunks<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    include_usage: bool,
}

impl Chunks<'_> {
    fn chunk(&self, delta: Delta<'_>, finish_reason: Option<&'static str>) -> Bytes {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        };
        // With include_usage, OpenAI sends `"usage": null` on every chunk but the last.
        let usage = self.include_usage.then_some(None);
        sse::data_event(&self.envelope(std::slice::from_ref(&choice), usage))
    }

    fn usage(&self, usage: Usage) -> Bytes {
        sse::data_event(&self.envelope(&[], Some(Some(WireUsage::from(usage)))))
    }

    fn envelope<'c>(
        &'c self,
        choices: &'c [ChunkChoice<'c>],
        usage: Option<Option<WireUsage>>,
    ) -> Chunk<'c> {
        Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            service_tier: SERVICE_TIER,
            system_fingerprint: SYSTEM_FINGERPRINT,
            choices,
            usage,
        }
    }
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: (),
    code: Option<&'static str>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: WireUsage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[WireToolCall<'a>; 1]>,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

#[derive(Serialize, Default)]
struct PromptTokensDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize, Default)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

impl From<Usage> for WireUsage {
    fn from(usage: Usage) -> Self {
        WireUsage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: PromptTokensDetails::default(),
            completion_tokens_details: CompletionTokensDetails::default(),
        }
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent unless usage was asked for; then `null` until the final usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<WireUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// A chunk's delta; each field is left out unless set, and `Some(None)` writes `null`.
#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[DeltaToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct DeltaToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: DeltaFunction<'a>,
}

#[derive(Serialize)]
struct DeltaFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}
