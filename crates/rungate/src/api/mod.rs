//! The HTTP surface (axum), all on one listener: the proxy under `/v1/*`, the admin API under
//! `/api/*`, `/health`, `/metrics`, `/openapi.json` and the dashboard under `/`. This is the only module that knows
//! status codes and error JSON; handlers translate HTTP into calls on the proxy, the store and
//! the domain, and back.

pub mod admin;
pub mod anthropic;
pub mod auth;
pub mod call;
pub mod dashboard;
pub mod error;
pub mod openai;
pub mod render;
pub mod runs;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use utoipa::OpenApi;

use crate::app::AppState;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Rungate", description = "Governance proxy for AI agents: run budgets, policies, approval gates and audit."),
    paths(
        openai::post_chat_completions, openai::post_responses, openai::get_models, anthropic::post_messages, anthropic::post_count_tokens,
        runs::get_run, runs::complete_run, runs::post_step, health,
    ),
    nest((path = "/api", api = admin::AdminApi)),
    tags((name = "proxy", description = "OpenAI and Anthropic wire formats, governed"),
         (name = "runs", description = "Agent-facing run endpoints"),
         (name = "admin", description = "Operator API (admin tokens with scopes)"))
)]
pub struct ApiDoc;

pub fn router(gw: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::post_chat_completions))
        .route("/v1/responses", post(openai::post_responses))
        .route("/v1/models", get(openai::get_models))
        .route("/v1/messages", post(anthropic::post_messages))
        .route("/v1/v1/messages", post(anthropic::post_messages))
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::post_count_tokens),
        )
        .route(
            "/v1/v1/messages/count_tokens",
            post(anthropic::post_count_tokens),
        )
        .route("/v1/runs/{id}", get(runs::get_run))
        .route("/v1/runs/{id}/complete", post(runs::complete_run))
        .route("/v1/runs/{id}/steps", post(runs::post_step))
        .nest("/api", admin::router())
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read under our own limit (413 with a JSON error), not axum's default.
        .layer(DefaultBodyLimit::disable())
        .with_state(gw)
}

/// `GET /health`: 200 once storage answers.
#[utoipa::path(get, path = "/health", tag = "admin", responses((status = 200, description = "{\"status\":\"healthy\"}"), (status = 503, description = "storage not ready")))]
async fn health(State(gw): State<AppState>) -> Response {
    if gw.ready().await {
        Json(json!({"status": "healthy"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy"})),
        )
            .into_response()
    }
}

async fn metrics(State(gw): State<AppState>) -> Response {
    gw.metrics
        .open_runs
        .set(i64::try_from(gw.runs.len()).unwrap_or(i64::MAX));
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gw.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// What no route took: the dashboard's pages and assets for a `GET`, a JSON 404 otherwise.
async fn not_found(method: http::Method, uri: http::Uri) -> Response {
    let page = match method {
        http::Method::GET | http::Method::HEAD => dashboard::serve(uri.path()),
        _ => None,
    };
    page.unwrap_or_else(|| ApiError::not_found(format!("route {}", uri.path())).into_response())
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"type": "invalid_request_error", "code": "method_not_allowed", "message": "Method not allowed"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
