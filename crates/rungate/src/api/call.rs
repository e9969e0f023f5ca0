//! The seam between HTTP and the proxy pipeline: reads the body under the size limit,
//! authenticates the agent, builds a [`ProxyCall`], and renders the [`ProxyReply`] or failure
//! in the caller's dialect with Rungate's headers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderValue;
use rungate_wire::Dialect;

use super::auth;
use super::error::ApiError;
use crate::app::Gateway;
use crate::proxy::{self, Ingress, ProxyCall, ProxyFailure, ProxyReply, ReplyBody};

/// Whether the call is governed and charged, or forwarded as-is (token counting).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Charging {
    Charged,
    Uncharged,
}

/// Reads a request body, refusing more than `limit` bytes with 413 before buffering it all.
pub async fn read_body(
    body: Body,
    headers: &http::HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || err.to_string().contains("length limit");
        if too_large {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::invalid(format!("cannot read request body: {err}"))
        }
    })
}

/// Runs one proxied call end to end and renders it.
pub async fn proxied(
    gw: Arc<Gateway>,
    ingress: Ingress,
    route: &'static str,
    charging: Charging,
    request: Request,
) -> Response {
    let dialect = ingress.dialect();
    let began = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let result = async {
        let agent = auth::authenticate_agent(&gw, &parts.headers).await?;
        let body = read_body(body, &parts.headers, gw.config.max_body_bytes).await?;
        let path = parts.uri.path().replacen("/v1/v1/", "/v1/", 1);
        let path_and_query = match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        Ok::<_, ApiError>(ProxyCall {
            ingress,
            path_and_query,
            headers: parts.headers,
            body,
            agent,
        })
    }
    .await;
    let outcome = match result {
        Ok(call) => run_to_completion(&gw, charging, call).await,
        Err(error) => Err(ProxyFailure::from(error)),
    };
    let response = match outcome {
        Ok(reply) => render_reply(reply),
        Err(failure) => render_failure(failure, dialect),
    };
    gw.metrics
        .record_response(route, response.status().as_u16(), began.elapsed());
    response
}

/// Runs the call in a task of its own, so that a client hanging up cannot cancel it halfway:
/// the provider answers (and bills) whether or not the client still listens, so the step, its
/// ledger entries and audit event are recorded all the same, and the call's hold is settled
/// rather than dropped. The task is tracked: a graceful stop waits for it.
async fn run_to_completion(
    gw: &Arc<Gateway>,
    charging: Charging,
    call: ProxyCall,
) -> Result<ProxyReply, ProxyFailure> {
    let task_gw = Arc::clone(gw);
    let task = gw.tasks.spawn(async move {
        match charging {
            Charging::Charged => proxy::handle(&task_gw, call).await,
            Charging::Uncharged => proxy::forward_uncharged(&task_gw, call).await,
        }
    });
    task.await.unwrap_or_else(|failed| {
        Err(ProxyFailure::from(ApiError::Internal(format!(
            "the call's task failed: {failed}"
        ))))
    })
}

fn render_reply(reply: ProxyReply) -> Response {
    let body = match reply.body {
        ReplyBody::Full(bytes) => Body::from(bytes),
        ReplyBody::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

pub fn render_failure(failure: ProxyFailure, dialect: Dialect) -> Response {
    if let ApiError::Internal(detail) = &failure.error {
        tracing::error!(error = %detail, "internal error");
    }
    let mut response = failure.error.into_dialect_response(dialect);
    if let Some(run_id) = failure.run_id {
        if let Ok(value) = HeaderValue::from_str(run_id.as_str()) {
            response.headers_mut().insert("x-rungate-run-id", value);
        }
    }
    response.into_response()
}
