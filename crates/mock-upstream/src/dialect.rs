//! The request → response flow every provider shares, and the response framing they have in common.
//!
//! A provider is a [`Dialect`]: how it checks keys, how it reads a body, how its errors look, how it
//! renders a reply as one JSON document or as a stream. A dialect is a value, not just a type, because
//! some facts of a request live in its URL (Gemini's model, stream form and `?key=`). The order of the
//! steps lives here once, so every provider scripts the same way: key check (401) → parse (400) → hang
//! → latency → scripted status → reply.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use crate::conversation::Conversation;
use crate::plan::{self, Plan};
use crate::server::Shared;
use crate::sse;

/// One provider's wire conventions.
pub(crate) trait Dialect {
    /// The message of the 401 sent for a missing or wrong key.
    const BAD_KEY_MESSAGE: &'static str;

    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool;

    /// Read a request body in this provider's layout.
    fn read(&self, body: &[u8]) -> Result<Conversation, plan::BadRequest>;

    /// The provider's error document for `status`.
    fn error_body(&self, status: StatusCode, message: &str) -> Vec<u8>;

    /// A complete, non-streamed reply.
    fn reply_body(&self, plan: &Plan, id: u64) -> Vec<u8>;

    /// A streamed reply, one event (one write) per element, in order.
    fn reply_events(&self, plan: &Plan, id: u64) -> Vec<Bytes>;

    /// The content type of a streamed reply.
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }
}

/// Answer a model call (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`, Gemini's
/// `generateContent`) in `dialect`.
pub(crate) async fn answer(
    dialect: &impl Dialect,
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let id = shared.next_id();
    let plan = match admit(dialect, shared, headers, body, id).await {
        Ok(plan) => plan,
        Err(refusal) => return refusal,
    };
    if plan.stream {
        let events = dialect.reply_events(&plan, id);
        let pacing = sse::Pacing {
            chunk_delay: plan.chunk_delay,
            die_after_events: plan.die_after_events,
        };
        let content_type = dialect.stream_content_type();
        event_stream(sse::body(events, pacing), content_type, id)
    } else {
        json(StatusCode::OK, dialect.reply_body(&plan, id), id)
    }
}

/// Run every step before the reply: key, parse, hang, latency, scripted status.
///
/// `Err` carries the response to send instead of a reply.
pub(crate) async fn admit(
    dialect: &impl Dialect,
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    id: u64,
) -> Result<Plan, Response> {
    let config = &shared.config;
    let wrong_key = config
        .require_key
        .as_deref()
        .is_some_and(|key| !dialect.key_matches(headers, key));
    if wrong_key {
        pause(config.latency).await;
        return Err(bad_key(dialect, id));
    }
    let planned = dialect
        .read(body)
        .and_then(|conversation| Plan::new(conversation, config, shared.default_script.as_ref()));
    let plan = match planned {
        Ok(plan) => plan,
        Err(plan::BadRequest(message)) => {
            pause(config.latency).await;
            return Err(error(dialect, StatusCode::BAD_REQUEST, &message, id));
        }
    };
    if plan.hang {
        tokio::time::sleep(plan::HANG).await;
    }
    pause(plan.latency).await;
    if let Some(status) = plan.status {
        let message = format!("mock error {}", status.as_u16());
        return Err(error(dialect, status, &message, id));
    }
    Ok(plan)
}

/// Sleep, skipping the timer entirely at zero: the benchmark runs at zero latency.
pub(crate) async fn pause(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

/// The 401 for a missing or wrong key.
pub(crate) fn bad_key<D: Dialect>(dialect: &D, id: u64) -> Response {
    error(dialect, StatusCode::UNAUTHORIZED, D::BAD_KEY_MESSAGE, id)
}

/// An error response in `dialect`; a 429 also says when to retry, as the providers do.
pub(crate) fn error(
    dialect: &impl Dialect,
    status: StatusCode,
    message: &str,
    id: u64,
) -> Response {
    let mut response = json(status, dialect.error_body(status, message), id);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A JSON response with the request-id headers of both providers.
pub(crate) fn json(status: StatusCode, body: Vec<u8>, id: u64) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    insert_request_id(headers, id);
    response
}

fn event_stream(body: Body, content_type: &'static str, id: u64) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    insert_request_id(headers, id);
    response
}

/// OpenAI answers with `x-request-id`, Anthropic with `request-id`; sending both costs nothing.
fn insert_request_id(headers: &mut HeaderMap, id: u64) {
    if let Ok(value) = HeaderValue::try_from(format!("req_mock_{id}")) {
        headers.insert("x-request-id", value.clone());
        headers.insert("request-id", value);
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Shared state as handlers receive it.
pub(crate) type SharedState = axum::extract::State<Arc<Shared>>;
