//! The operator API under `/api/*` (SPEC §8): provider keys, policies, agents, admin tokens,
//! runs and approval requests, the price table, and the dashboard's login session. Every handler first checks
//! the admin credential and its scope (`read` for reads, `write` for changes); agent tokens
//! never work here. Lists are `{"data":[...],"total":N}`, newest first, with `limit`/`offset`;
//! items are `{"data":{...}}`; creates answer 201.

mod agents;
mod analytics;
mod approvals;
mod keys;
mod policies;
mod prices;
mod runs;
mod session;
mod tokens;
mod webhooks;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::error::ApiError;
use crate::app::AppState;
use crate::store::Page;

#[derive(OpenApi)]
#[openapi(paths(
    keys::list_keys,
    keys::create_key,
    keys::get_key,
    keys::update_key,
    keys::delete_key,
    keys::upsert_key,
    keys::providers_health,
    policies::list_policies,
    policies::create_policy,
    policies::get_policy,
    policies::update_policy,
    policies::delete_policy,
    policies::upsert_policy,
    policies::list_versions,
    policies::get_version,
    agents::list_agents,
    agents::create_agent,
    agents::get_agent,
    agents::update_agent,
    agents::rotate_agent_key,
    agents::upsert_agent,
    agents::agent_stats,
    session::create_session,
    session::get_session,
    session::end_session,
    tokens::list_tokens,
    tokens::create_token,
    tokens::get_token,
    tokens::revoke_token,
    runs::list_runs,
    runs::get_run,
    runs::list_steps,
    runs::get_ledger,
    runs::stop_run,
    runs::get_audit,
    runs::verify_audit,
    runs::get_trace,
    approvals::list_gates,
    approvals::get_gate,
    approvals::approve_gate,
    approvals::reject_gate,
    webhooks::list_webhooks,
    webhooks::create_webhook,
    webhooks::get_webhook,
    webhooks::update_webhook,
    webhooks::delete_webhook,
    webhooks::rotate_secret,
    webhooks::enable_webhook,
    webhooks::disable_webhook,
    webhooks::test_webhook,
    webhooks::list_deliveries,
    analytics::get_figure,
    analytics::cleanup_preview,
    analytics::cleanup,
    prices::get_prices,
    prices::import_prices,
))]
pub struct AdminApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/provider-keys",
            get(keys::list_keys).post(keys::create_key),
        )
        .route(
            "/provider-keys/{id}",
            get(keys::get_key)
                .put(keys::update_key)
                .delete(keys::delete_key),
        )
        .route("/provider-keys/by-name/{name}", put(keys::upsert_key))
        .route("/providers/health", get(keys::providers_health))
        .route(
            "/policies",
            get(policies::list_policies).post(policies::create_policy),
        )
        .route(
            "/policies/{id}",
            get(policies::get_policy)
                .put(policies::update_policy)
                .delete(policies::delete_policy),
        )
        .route("/policies/by-name/{name}", put(policies::upsert_policy))
        .route("/policies/{id}/versions", get(policies::list_versions))
        .route(
            "/policies/{id}/versions/{version}",
            get(policies::get_version),
        )
        .route(
            "/agents",
            get(agents::list_agents).post(agents::create_agent),
        )
        .route(
            "/agents/{id}",
            get(agents::get_agent)
                .put(agents::update_agent)
                .patch(agents::update_agent),
        )
        .route("/agents/{id}/rotate-key", post(agents::rotate_agent_key))
        .route("/agents/by-name/{name}", put(agents::upsert_agent))
        .route("/agents/stats/all", get(agents::agent_stats))
        .route(
            "/session",
            get(session::get_session)
                .post(session::create_session)
                .delete(session::end_session),
        )
        .route(
            "/admin-tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/admin-tokens/{id}", get(tokens::get_token))
        .route("/admin-tokens/{id}/revoke", post(tokens::revoke_token))
        .route("/runs", get(runs::list_runs))
        .route("/runs/{id}", get(runs::get_run))
        .route("/runs/{id}/steps", get(runs::list_steps))
        .route("/runs/{id}/ledger", get(runs::get_ledger))
        .route("/runs/{id}/stop", post(runs::stop_run))
        .route("/runs/{id}/audit", get(runs::get_audit))
        .route("/runs/{id}/audit/verify", get(runs::verify_audit))
        .route("/runs/{id}/trace", get(runs::get_trace))
        .route("/approval-requests", get(approvals::list_gates))
        .route("/approval-requests/{id}", get(approvals::get_gate))
        .route(
            "/approval-requests/{id}/approve",
            post(approvals::approve_gate),
        )
        .route(
            "/approval-requests/{id}/reject",
            post(approvals::reject_gate),
        )
        .route(
            "/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_webhook)
                .put(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/enable", post(webhooks::enable_webhook))
        .route("/webhooks/{id}/disable", post(webhooks::disable_webhook))
        .route("/webhooks/{id}/test", post(webhooks::test_webhook))
        .route("/webhooks/{id}/deliveries", get(webhooks::list_deliveries))
        .route(
            "/analytics/cleanup-preview",
            get(analytics::cleanup_preview),
        )
        .route("/analytics/cleanup", post(analytics::cleanup))
        .route("/analytics/{figure}", get(analytics::get_figure))
        .route("/prices", get(prices::get_prices))
        .route("/prices/import", post(prices::import_prices))
}

/// `limit` / `offset` of list endpoints. Flattened into each filter, where serde hands the
/// query values over as strings, hence the lenient number parsing.
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    #[serde(default, deserialize_with = "number")]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "number")]
    pub offset: Option<u32>,
}

fn number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u32),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(text)) => text.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("{text:?} is not a non-negative integer"))
        }),
    }
}

/// Query-string parameters; a bad one is a JSON 400 naming it, like every other error.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Params(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

impl Paging {
    pub fn page(&self) -> Page {
        Page {
            limit: self.limit.unwrap_or(50).clamp(1, 1000),
            offset: self.offset.unwrap_or(0),
        }
    }
}

pub fn list(items: Vec<Value>, total: u64) -> Response {
    Json(json!({"data": items, "total": total})).into_response()
}

pub fn item(value: Value) -> Response {
    Json(json!({"data": value})).into_response()
}

pub fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(json!({"data": value}))).into_response()
}

/// Parses a JSON body into `T`, naming the offending field on failure.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path.is_empty() || path == "." {
            ApiError::invalid(format!("invalid body: {inner}"))
        } else {
            ApiError::invalid(format!("invalid body at `{path}`: {inner}"))
        }
    })
}

/// 404 with the kind of thing that was missing.
pub fn missing<'a>(
    what: &'static str,
    id: &'a str,
) -> impl FnOnce(crate::store::StoreError) -> ApiError + 'a {
    move |err| match err {
        crate::store::StoreError::NotFound => ApiError::not_found(format!("{what} {id}")),
        other => other.into(),
    }
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
