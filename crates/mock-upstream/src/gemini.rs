//! Google's Gemini API (`/v1beta/models/{model}:{method}`, and the same under `/v1/`), in the shapes
//! the `google-genai` SDKs parse.
//!
//! Three methods: `generateContent`, `streamGenerateContent` and `countTokens`. The model and the
//! stream form come from the URL: `streamGenerateContent?alt=sse` answers SSE events framed
//! `data: {...}\r\n\r\n` as Google frames them; without `alt=sse` the real API streams one JSON array
//! of the same chunks, and so does the mock (one chunk per write). Every chunk carries the usage so
//! far, as Gemini's do, so a gateway can bill a stream that dies halfway; the last one carries the
//! `finishReason`. A function call arrives whole in one chunk: Gemini does not stream arguments.
//!
//! Keys are `x-goog-api-key` or `?key=`. A wrong key is a 401 `UNAUTHENTICATED` here, like the other
//! dialects' 401s, although the real API answers 400 `INVALID_ARGUMENT` (reason `API_KEY_INVALID`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::conversation::{self, Conversation};
use crate::dialect::{self, Dialect, SharedState};
use crate::plan::{self, Answer, BadRequest, Plan, Usage};
use crate::{auth, query, sse};

/// The API versions served; `google-genai` calls `v1` by default, older SDKs and most docs `v1beta`.
const PREFIXES: [&str; 2] = ["/v1beta/models/", "/v1/models/"];

/// One Gemini call: the facts its URL carries.
pub(crate) struct Gemini {
    model: String,
    /// `None` for `generateContent`.
    stream: Option<StreamForm>,
    /// The `?key=` parameter.
    key: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StreamForm {
    /// `?alt=sse`: server-sent events.
    Sse,
    /// No `alt`: one JSON array, streamed element by element.
    JsonArray,
}

/// `POST /v1beta/models/{model}:{method}` and `POST /v1/models/{model}:{method}`
pub(crate) async fn post_model_call(
    State(shared): SharedState,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or("");
    let path = uri.path();
    let call = PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .unwrap_or("");
    let (model, method) = call.rsplit_once(':').unwrap_or((call, ""));
    let stream = match method {
        "generateContent" | "countTokens" => None,
        "streamGenerateContent" if query::param(query, "alt").as_deref() == Some("sse") => {
            Some(StreamForm::Sse)
        }
        "streamGenerateContent" => Some(StreamForm::JsonArray),
        _ => {
            let message = format!("Method {method:?} of models/{model} is not found.");
            let id = shared.next_id();
            return dialect::error(&Gemini::error_only(), StatusCode::NOT_FOUND, &message, id);
        }
    };
    let gemini = Gemini {
        model: model.to_owned(),
        stream,
        key: query::param(query, "key"),
    };
    if method == "countTokens" {
        return count_tokens(&gemini, &shared, &headers, &body).await;
    }
    dialect::answer(&gemini, &shared, &headers, &body).await
}

/// `:countTokens`: the prompt count a reply to this body would report.
async fn count_tokens(
    gemini: &Gemini,
    shared: &crate::server::Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let id = shared.next_id();
    match dialect::admit(gemini, shared, headers, body, id).await {
        Ok(plan) => {
            let mut out = Vec::with_capacity(32);
            let count = TokenCount {
                total_tokens: plan.usage.input_tokens,
            };
            sse::write_json(&mut out, &count);
            dialect::json(StatusCode::OK, out, id)
        }
        Err(refusal) => refusal,
    }
}

impl Gemini {
    /// A dialect value good for rendering errors, before the URL is understood.
    fn error_only() -> Gemini {
        Gemini {
            model: String::new(),
            stream: None,
            key: None,
        }
    }
}

impl Dialect for Gemini {
    const BAD_KEY_MESSAGE: &'static str = "API key not valid. Please pass a valid API key.";

    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        auth::goog_key_matches(headers, self.key.as_deref(), key)
    }

    fn read(&self, body: &[u8]) -> Result<Conversation, BadRequest> {
        conversation::from_gemini(body, &self.model, self.stream.is_some())
    }

    fn error_body(&self, status: StatusCode, message: &str) -> Vec<u8> {
        let code = status.as_u16();
        let canonical = match code {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            499 => "CANCELLED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ if status.is_client_error() => "FAILED_PRECONDITION",
            _ => "INTERNAL",
        };
        let document = ErrorDocument {
            error: ErrorBody {
                code,
                message,
                status: canonical,
            },
        };
        let mut out = Vec::with_capacity(128);
        sse::write_json(&mut out, &document);
        out
    }

    fn reply_body(&self, plan: &Plan, id: u64) -> Vec<u8> {
        let response_id = response_id(id);
        let part = whole_part(&plan.answer);
        let chunk = chunk(plan, &response_id, &part, Some("STOP"), plan.usage);
        let mut out = Vec::with_capacity(512);
        sse::write_json(&mut out, &chunk);
        out
    }

    fn reply_events(&self, plan: &Plan, id: u64) -> Vec<Bytes> {
        let response_id = response_id(id);
        let pieces = match &plan.answer {
            Answer::Text(text) => plan::word_pieces(text),
            Answer::ToolCall(_) => Vec::new(),
        };
        let chunks = pieces.len().max(1);
        let mut events = Vec::with_capacity(chunks);
        for at in 0..chunks {
            let last = at + 1 == chunks;
            let part = match (&plan.answer, pieces.get(at)) {
                (Answer::Text(_), Some(piece)) => Part::Text { text: piece },
                _ => whole_part(&plan.answer),
            };
            let usage = Usage {
                input_tokens: plan.usage.input_tokens,
                output_tokens: share(plan.usage.output_tokens, at + 1, chunks),
            };
            let finish = last.then_some("STOP");
            let chunk = chunk(plan, &response_id, &part, finish, usage);
            events.push(self.frame(&chunk, at == 0, last));
        }
        events
    }

    fn stream_content_type(&self) -> &'static str {
        match self.stream {
            Some(StreamForm::JsonArray) => "application/json",
            Some(StreamForm::Sse) | None => "text/event-stream",
        }
    }
}

impl Gemini {
    /// One chunk as the stream form frames it: an SSE event, or an element of the JSON array.
    fn frame(&self, chunk: &Chunk<'_>, first: bool, last: bool) -> Bytes {
        if self.stream != Some(StreamForm::JsonArray) {
            return sse::data_event_crlf(chunk);
        }
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(if first { b"[" } else { b",\r\n" });
        sse::write_json(&mut out, chunk);
        if last {
            out.extend_from_slice(b"]");
        }
        Bytes::from(out)
    }
}

fn response_id(id: u64) -> String {
    format!("mock-response-{id}")
}

/// The cumulative output count after `done` of `total_chunks` chunks: rises with each chunk and is
/// exactly `output` on the last.
fn share(output: u64, done: usize, total_chunks: usize) -> u64 {
    let (done, total) = (done as u128, total_chunks.max(1) as u128);
    u64::try_from(u128::from(output) * done / total).unwrap_or(output)
}

fn whole_part(answer: &Answer) -> Part<'_> {
    match answer {
        Answer::Text(text) => Part::Text { text },
        Answer::ToolCall(call) => Part::FunctionCall {
            function_call: FunctionCall {
                name: &call.name,
                args: &call.input,
            },
        },
    }
}

fn chunk<'a>(
    plan: &'a Plan,
    response_id: &'a str,
    part: &'a Part<'a>,
    finish_reason: Option<&'static str>,
    usage: Usage,
) -> Chunk<'a> {
    Chunk {
        candidates: [Candidate {
            content: Content {
                parts: std::slice::from_ref(part),
                role: "model",
            },
            finish_reason,
            index: 0,
        }],
        usage_metadata: UsageMetadata::from(usage),
        model_version: &plan.model,
        response_id,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenCount {
    total_tokens: u64,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
}

/// A whole reply, or one chunk of a stream: the same shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    candidates: [Candidate<'a>; 1],
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: &'a [Part<'a>],
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Text {
        text: &'a str,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall<'a>,
    },
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    prompt_tokens_details: [ModalityCount; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u64,
}

impl From<Usage> for UsageMetadata {
    fn from(usage: Usage) -> Self {
        UsageMetadata {
            prompt_token_count: usage.input_tokens,
            candidates_token_count: usage.output_tokens,
            total_token_count: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: [ModalityCount {
                modality: "TEXT",
                token_count: usage.input_tokens,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_output_share_rises_to_the_total() {
        assert_eq!(
            (1..=4).map(|done| share(4, done, 4)).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(share(567, 3, 3), 567);
        assert_eq!(share(1, 1, 3), 0);
        assert_eq!(share(u64::MAX, 2, 2), u64::MAX);
        assert_eq!(share(9, 1, 0), 9);
    }
}
