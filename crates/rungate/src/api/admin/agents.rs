//! `/api/agents`: agent identities. The token is generated here, shown once in the create or
//! rotate response, and stored only as a hash. Every change is pushed to the proxy's cache, so
//! disabling an agent refuses its very next call.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Paging, Params, created, item, list, missing, new_id, parse_body};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::app::{AppState, Gateway};
use crate::providers::Provider;
use crate::run::{now_ms, rfc3339};
use crate::security::{TokenKind, generate_token, hash_token};
use crate::store::{Agent, AgentStatus, Scope, StoreError};

fn render(agent: &Agent) -> Value {
    json!({
        "id": agent.id, "name": agent.name, "status": agent.status.as_str(), "team": agent.team,
        "policy_id": agent.policy_id, "provider_keys": agent.provider_keys, "key_prefix": agent.token_prefix,
        "metadata": agent.metadata,
        "created_at": rfc3339(agent.created_at_ms), "updated_at": rfc3339(agent.updated_at_ms),
    })
}

fn render_with_token(agent: &Agent, token: &str) -> Value {
    let mut body = render(agent);
    body["api_key"] = json!(token);
    body
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    name: Option<String>,
    policy_id: Option<Option<String>>,
    team: Option<Option<String>>,
    provider_keys: Option<BTreeMap<String, String>>,
    status: Option<String>,
    metadata: Option<Value>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AgentFilter {
    status: Option<String>,
    policy_id: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// Applies a create/update body, checking that every referenced policy and key exists.
async fn apply(gw: &Gateway, agent: &mut Agent, body: AgentBody) -> Result<(), ApiError> {
    if let Some(name) = body.name {
        agent.name = name;
    }
    if agent.name.trim().is_empty() {
        return Err(ApiError::invalid("name is required"));
    }
    if let Some(policy_id) = body.policy_id {
        if let Some(id) = &policy_id {
            gw.stores
                .policies
                .get_policy(id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => ApiError::invalid(format!("unknown policy_id {id:?}")),
                    other => other.into(),
                })?;
        }
        agent.policy_id = policy_id;
    }
    if let Some(team) = body.team {
        agent.team = team.filter(|t| !t.is_empty());
    }
    if let Some(keys) = body.provider_keys {
        for (provider, key_id) in &keys {
            let key = gw.stores.keys.get_key(key_id).await.map_err(|e| match e {
                StoreError::NotFound => {
                    ApiError::invalid(format!("unknown provider key {key_id:?}"))
                }
                other => other.into(),
            })?;
            if Provider::parse(provider).is_none() || key.provider != *provider {
                return Err(ApiError::invalid(format!(
                    "provider key {key_id:?} is a {} key, not {provider}",
                    key.provider
                )));
            }
        }
        agent.provider_keys = keys;
    }
    if let Some(status) = body.status {
        agent.status = AgentStatus::parse(&status)
            .ok_or_else(|| ApiError::invalid(format!("unknown status {status:?}")))?;
    }
    let mut metadata = body.metadata.unwrap_or_else(|| agent.metadata.clone());
    if let (Some(description), Some(object)) = (body.description, metadata.as_object_mut()) {
        object.insert("description".into(), json!(description));
    }
    agent.metadata = metadata;
    agent.updated_at_ms = now_ms();
    Ok(())
}

fn new_agent() -> (Agent, String) {
    let token = generate_token(TokenKind::Agent);
    let now = now_ms();
    let agent = Agent {
        id: new_id("agt"),
        name: String::new(),
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(12).collect(),
        team: None,
        policy_id: None,
        provider_keys: BTreeMap::new(),
        status: AgentStatus::Active,
        metadata: json!({}),
        created_at_ms: now,
        updated_at_ms: now,
    };
    (agent, token)
}

#[utoipa::path(get, path = "/agents", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_agents(
    State(gw): State<AppState>,
    parts: Parts,
    Params(f): Params<AgentFilter>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let status = f.status.as_deref().and_then(AgentStatus::parse);
    let (agents, total) = gw
        .stores
        .agents
        .list_agents(status, f.policy_id.as_deref(), f.paging.page())
        .await?;
    Ok(list(agents.iter().map(render).collect(), total))
}

#[utoipa::path(post, path = "/agents", tag = "admin", responses((status = 201, description = "created; `api_key` is shown only here")))]
pub async fn create_agent(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let (mut agent, token) = new_agent();
    apply(&gw, &mut agent, parse_body(&body)?).await?;
    gw.stores.agents.create_agent(&agent).await?;
    super::webhooks::announce(&gw, "agent.created", render(&agent)).await;
    Ok(created(render_with_token(&agent, &token)))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn get_agent(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let agent = gw
        .stores
        .agents
        .get_agent(&id)
        .await
        .map_err(missing("agent", &id))?;
    Ok(item(render(&agent)))
}

#[utoipa::path(put, path = "/agents/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn update_agent(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut agent = gw
        .stores
        .agents
        .get_agent(&id)
        .await
        .map_err(missing("agent", &id))?;
    apply(&gw, &mut agent, parse_body(&body)?).await?;
    gw.stores.agents.update_agent(&agent).await?;
    gw.directory.forget_agent(&agent.id);
    Ok(item(render(&agent)))
}

#[utoipa::path(post, path = "/agents/{id}/rotate-key", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the new `api_key`, shown only here")))]
pub async fn rotate_agent_key(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut agent = gw
        .stores
        .agents
        .get_agent(&id)
        .await
        .map_err(missing("agent", &id))?;
    let token = generate_token(TokenKind::Agent);
    agent.token_hash = hash_token(&token);
    agent.token_prefix = token.chars().take(12).collect();
    agent.updated_at_ms = now_ms();
    gw.stores.agents.update_agent(&agent).await?;
    gw.directory.forget_agent(&agent.id);
    Ok(item(render_with_token(&agent, &token)))
}

#[utoipa::path(put, path = "/agents/by-name/{name}", tag = "admin", params(("name" = String, Path)), responses((status = 200, description = "updated"), (status = 201, description = "created")))]
pub async fn upsert_agent(
    State(gw): State<AppState>,
    parts: Parts,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut body: AgentBody = parse_body(&body)?;
    body.name = Some(name.clone());
    match gw.stores.agents.agent_by_name(&name).await {
        Ok(mut agent) => {
            apply(&gw, &mut agent, body).await?;
            gw.stores.agents.update_agent(&agent).await?;
            gw.directory.forget_agent(&agent.id);
            Ok(item(render(&agent)))
        }
        Err(StoreError::NotFound) => {
            let (mut agent, token) = new_agent();
            apply(&gw, &mut agent, body).await?;
            gw.stores.agents.create_agent(&agent).await?;
            Ok(created(render_with_token(&agent, &token)))
        }
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(get, path = "/agents/stats/all", tag = "admin", responses((status = 200, description = "totals per agent")))]
pub async fn agent_stats(State(gw): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let totals = gw.stores.runs.agent_totals().await?;
    let items: Vec<Value> = totals
        .iter()
        .map(|t| {
            json!({
                "agent_id": t.agent_id, "total_runs": t.runs, "total_cost_usd": t.spend.as_usd(),
                "total_tokens": t.input_tokens + t.output_tokens, "total_steps": t.steps,
            })
        })
        .collect();
    let total = items.len() as u64;
    Ok(list(items, total))
}
