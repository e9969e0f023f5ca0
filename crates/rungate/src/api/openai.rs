//! OpenAI-dialect routes: Chat Completions and Responses (both governed) and the model list.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::json;

use super::auth;
use super::call::{Charging, proxied};
use super::error::ApiError;
use crate::app::AppState;
use crate::providers::Provider;
use crate::proxy::Ingress;
use crate::store::StoreError;

/// `POST /v1/chat/completions`
#[utoipa::path(post, path = "/v1/chat/completions", tag = "proxy",
    responses((status = 200, description = "The provider's answer, JSON or SSE, with x-rungate-* headers"),
              (status = 400, description = "invalid_request"), (status = 401, description = "invalid_api_key"),
              (status = 403, description = "governance block"), (status = 409, description = "run_closed / run_id_taken"),
              (status = 413, description = "payload_too_large"), (status = 502, description = "provider_error"),
              (status = 504, description = "provider_timeout")))]
pub async fn post_chat_completions(State(gw): State<AppState>, request: Request) -> Response {
    proxied(
        gw,
        Ingress::ChatCompletions,
        "chat_completions",
        Charging::Charged,
        request,
    )
    .await
}

/// `POST /v1/responses`: the Responses API (OpenAI Agents SDK, Codex), governed like Chat
/// Completions: budgets, policies, gates on proposed function calls, audit.
#[utoipa::path(post, path = "/v1/responses", tag = "proxy",
    responses((status = 200, description = "The provider's answer, JSON or SSE, with x-rungate-* headers"),
              (status = 400, description = "invalid_request"), (status = 401, description = "invalid_api_key"),
              (status = 403, description = "governance block"), (status = 409, description = "run_closed / run_id_taken"),
              (status = 413, description = "payload_too_large"), (status = 502, description = "provider_error"),
              (status = 504, description = "provider_timeout")))]
pub async fn post_responses(State(gw): State<AppState>, request: Request) -> Response {
    proxied(
        gw,
        Ingress::Responses,
        "responses",
        Charging::Charged,
        request,
    )
    .await
}

/// `GET /v1/models`: the models the agent's policy allows, in OpenAI's list format.
#[utoipa::path(get, path = "/v1/models", tag = "proxy", responses((status = 200, description = "OpenAI model list")))]
pub async fn get_models(State(gw): State<AppState>, headers: HeaderMap) -> Response {
    match models(&gw, &headers).await {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn models(
    gw: &crate::app::Gateway,
    headers: &HeaderMap,
) -> Result<serde_json::Value, ApiError> {
    let agent = auth::authenticate_agent(gw, headers).await?;
    let allowed = match &agent.policy_id {
        Some(id) => match gw.stores.policies.get_policy(id).await {
            Ok(policy) => policy.document.allowed_models,
            Err(StoreError::NotFound) => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let names: Vec<String> = match allowed {
        Some(list) => list
            .into_iter()
            .map(|m| {
                m.rsplit_once('/')
                    .map_or(m.clone(), |(_, bare)| bare.to_owned())
            })
            .collect(),
        None => gw.prices.model_names(),
    };
    let data: Vec<_> = names
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": owner(id)}))
        .collect();
    Ok(json!({"object": "list", "data": data}))
}

fn owner(model: &str) -> &'static str {
    if model.starts_with("claude") {
        Provider::Anthropic.name()
    } else {
        Provider::OpenAi.name()
    }
}
