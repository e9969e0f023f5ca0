//! The agent-facing run endpoints: report a tool step, complete a run, read it. An agent sees
//! only runs of its own team; any other id is a 404, so run ids leak nothing across teams.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth;
use super::call::read_body;
use super::error::{ApiError, BlockCode};
use super::render;
use crate::app::{AppState, Gateway};
use crate::audit::AuditEvent;
use crate::budget::{LedgerEntry, LedgerKind};
use crate::money::UsdNanos;
use crate::proxy::lifecycle;
use crate::proxy::{decide, gates, resolve};
use crate::run::{self, Run, RunId, RunStatus, Step, StepId, StepKind, StepStatus};
use crate::store::{Agent, StepRecord, StoreError};

/// Loads a run the agent's team owns; 404 otherwise.
async fn own_run(gw: &Gateway, agent: &Agent, raw_id: &str) -> Result<Run, ApiError> {
    let id = RunId::parse(raw_id).ok_or_else(|| ApiError::not_found(format!("run {raw_id}")))?;
    let run = match gw.stores.runs.get_run(&id).await {
        Ok(run) => run,
        Err(StoreError::NotFound) => return Err(ApiError::not_found(format!("run {id}"))),
        Err(err) => return Err(err.into()),
    };
    if run.team != run::team_key(&agent.id, agent.team.as_deref()) {
        return Err(ApiError::not_found(format!("run {id}")));
    }
    Ok(run)
}

async fn run_body(gw: &Gateway, run: &Run) -> Result<Value, ApiError> {
    let policy = match (&run.policy_id, run.policy_version) {
        (Some(id), Some(v)) => gw.directory.policy(id, v).await.ok(),
        _ => None,
    };
    Ok(render::run(run, render::run_limit(run, policy.as_deref())))
}

/// `GET /v1/runs/{id}`
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, description = "{\"data\": run}"), (status = 404, description = "not_found")))]
pub async fn get_run(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    let agent = auth::authenticate_agent(&gw, &headers).await?;
    let run = own_run(&gw, &agent, &id).await?;
    Ok(Json(json!({"data": run_body(&gw, &run).await?})).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct CompleteBody {
    ended_reason: Option<String>,
    metadata: Option<Value>,
}

/// `POST /v1/runs/{id}/complete` — idempotent.
#[utoipa::path(post, path = "/v1/runs/{id}/complete", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, description = "{\"data\": run}"), (status = 404, description = "not_found")))]
pub async fn complete_run(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let agent = auth::authenticate_agent(&gw, &parts.headers).await?;
    let bytes = read_body(body, &parts.headers, gw.config.max_body_bytes).await?;
    let body: CompleteBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CompleteBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?
    };
    let run = own_run(&gw, &agent, &id).await?;
    let run = if run.status == RunStatus::Running {
        let reason = body.ended_reason.as_deref().unwrap_or("agent_signaled");
        let actor = format!("agent:{}", agent.id);
        lifecycle::close_run(
            &gw,
            &run.id,
            RunStatus::Completed,
            reason,
            body.metadata.as_ref(),
            actor,
        )
        .await?
    } else {
        run
    };
    Ok(Json(json!({"data": run_body(&gw, &run).await?})).into_response())
}

#[derive(Debug, Deserialize)]
struct ToolStepBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    tokens: Option<Tokens>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    cost_usd: Option<f64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    provider: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Tokens {
    #[serde(default)]
    input: u64,
    #[serde(default)]
    output: u64,
}

/// `POST /v1/runs/{id}/steps` — the agent reports a tool call.
#[utoipa::path(post, path = "/v1/runs/{id}/steps", tag = "runs", params(("id" = String, Path)),
    responses((status = 201, description = "{\"data\": step}"), (status = 400, description = "invalid_request"),
              (status = 404, description = "not_found"), (status = 409, description = "run_closed")))]
pub async fn post_step(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let agent = auth::authenticate_agent(&gw, &parts.headers).await?;
    let bytes = read_body(body, &parts.headers, gw.config.max_body_bytes).await?;
    let body: ToolStepBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("invalid step: {e}")))?;
    if body.kind.as_deref().is_some_and(|k| k != "tool_call") {
        return Err(ApiError::invalid(
            "only steps of type tool_call can be reported",
        ));
    }
    let status = match body.status.as_deref() {
        None => StepStatus::Success,
        Some(s) => StepStatus::parse(s)
            .ok_or_else(|| ApiError::invalid(format!("unknown step status {s:?}")))?,
    };
    let cost = match body.cost_usd {
        None => UsdNanos::ZERO,
        Some(usd) => UsdNanos::from_usd(usd)
            .ok_or_else(|| ApiError::invalid("cost_usd must be a non-negative number"))?,
    };
    let run = own_run(&gw, &agent, &id).await?;
    run::check_join(&run, &run.team).map_err(|refused| resolve::refusal(&run.id, refused))?;
    check_reported_tool(&gw, &run, &body.name).await?;
    let call = rungate_wire::ProposedCall {
        name: body.name.clone(),
        arguments: body.request.clone().unwrap_or(Value::Null),
    };
    gate_reported_tool(&gw, &agent, &run, &call, parts.uri.path(), &bytes).await?;
    let step = tool_step(&agent, &run, body, status, cost);
    let record = StepRecord {
        ledger: (cost > UsdNanos::ZERO)
            .then(|| LedgerEntry {
                kind: LedgerKind::ToolCost,
                step_id: step.id.0.clone(),
                amount: cost,
                created_at_ms: step.created_at_ms,
            })
            .into_iter()
            .collect(),
        audit: vec![AuditEvent {
            kind: "step.recorded",
            actor: format!("agent:{}", agent.id),
            data: json!({"step_id": step.id, "type": "tool_call", "tool": step.model, "status": step.status, "cost_nanos": cost.0}),
            at_ms: step.created_at_ms,
        }],
        step,
        hold_id: None,
        alert: None,
    };
    let committed = gw.stores.runs.record_step(&record).await?;
    gw.metrics
        .record_spend(&agent.id, &record.step.model, record.step.cost);
    if let Some(live) = gw.runs.get(&run.id) {
        live.refresh(&committed);
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": render::step(&record.step)})),
    )
        .into_response())
}

/// The pinned policy's rules that apply to a reported tool step: blocked tools and max_steps.
async fn check_reported_tool(gw: &Gateway, run: &Run, tool: &str) -> Result<(), ApiError> {
    let (Some(policy_id), Some(version)) = (&run.policy_id, run.policy_version) else {
        return Ok(());
    };
    let policy = gw.directory.policy(policy_id, version).await?;
    let doc = &policy.document;
    if doc
        .blocked_tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|t| t == tool)
    {
        return Err(decide::tool_blocked(
            &run.id,
            &policy,
            tool,
            decide::ToolUse::Reported,
        ));
    }
    if let Some(limit) = decide::tool_limit(&policy, tool) {
        let proposed = crate::proxy::shared::proposals_of(gw, &run.id, tool).await?;
        let used = gw.stores.runs.tool_steps(&run.id, tool).await? + proposed;
        if used >= limit {
            return Err(decide::tool_limit_reached(
                &run.id, &policy, tool, used, limit,
            ));
        }
    }
    if let Some(limit) = doc.max_steps.filter(|limit| run.steps_count >= *limit) {
        return Err(decide::block(
            &run.id,
            &policy,
            BlockCode::RunawayPrevention,
            format!("Run reached its limit of {limit} steps"),
            json!({"steps": run.steps_count, "max_steps": limit}),
            json!({"rule": "max_steps", "steps": run.steps_count.to_string(), "max_steps": limit.to_string(),
                   "step_that_tripped": format!("tool.{tool}"), "how_to_recover": "start a new run"}),
        ));
    }
    Ok(())
}

/// Approval rules on a reported tool step: 202 until an approver lets exactly this report in.
async fn gate_reported_tool(
    gw: &Gateway,
    agent: &Agent,
    run: &Run,
    call: &rungate_wire::ProposedCall,
    path: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let (Some(policy_id), Some(version)) = (&run.policy_id, run.policy_version) else {
        return Ok(());
    };
    let policy = gw.directory.policy(policy_id, version).await?;
    if !policy.document.has_approval_rules() {
        return Ok(());
    }
    let live = match gw.runs.get(&run.id) {
        Some(live) => live,
        None => std::sync::Arc::new(crate::proxy::live::LiveRun::new(
            run,
            Some(policy.clone()),
            i64::MAX,
        )),
    };
    let fingerprint = crate::gate::fingerprint("POST", path, body);
    let asker = gates::Asker {
        run: &live,
        policy: &policy,
        agent,
        fingerprint: &fingerprint,
    };
    gates::reported_tool(gw, &asker, call).await
}

fn tool_step(
    agent: &Agent,
    run: &Run,
    body: ToolStepBody,
    status: StepStatus,
    cost: UsdNanos,
) -> Step {
    let tokens = body.tokens.unwrap_or_default();
    Step {
        id: StepId::generate(),
        run_id: run.id.clone(),
        agent_id: agent.id.clone(),
        kind: StepKind::ToolCall,
        provider: body.provider.unwrap_or_else(|| "sdk".into()),
        model: body.name,
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        cost,
        latency_ms: body
            .latency_ms
            .filter(|l| l.is_finite() && *l >= 0.0)
            .map_or(0, |l| l.round() as u64),
        status,
        http_status: None,
        error_message: body.error_message,
        request: body.request,
        response: body.response,
        created_at_ms: run::now_ms(),
        price_version: None,
    }
}
