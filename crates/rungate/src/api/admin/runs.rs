//! `/api/runs`: every run across agents, its steps, ledger and audit chain, and the operator's
//! force-stop (later calls in the run get 403 `run_force_stopped`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;

use super::{Paging, Params, item, list, missing};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::api::render;
use crate::app::{AppState, Gateway};
use crate::audit;
use crate::money::UsdNanos;
use crate::proxy::lifecycle;
use crate::run::{self, Run, RunId, RunStatus};
use crate::store::{RunFilter, Scope};

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    agent_id: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    min_spend_usd: Option<String>,
    max_spend_usd: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

pub(super) fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let parsed = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
        ApiError::invalid(format!("{field}: {raw:?} is not an RFC 3339 time: {e}"))
    })?;
    Ok(Some(
        i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    ))
}

/// A decimal dollar amount from the query (`"0.5"`; empty is no bound, as a cleared form field
/// sends it); 400 naming `field` when it is not one.
fn parse_usd(field: &str, raw: Option<&str>) -> Result<Option<UsdNanos>, ApiError> {
    let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
        return Ok(None);
    };
    UsdNanos::parse_usd(raw).map(Some).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field}: {raw:?} is not a non-negative decimal USD amount such as \"0.5\""
        ))
    })
}

fn run_id(raw: &str) -> Result<RunId, ApiError> {
    RunId::parse(raw).ok_or_else(|| ApiError::not_found(format!("run {raw}")))
}

async fn render_run(gw: &Gateway, run: &Run) -> serde_json::Value {
    let policy = match (&run.policy_id, run.policy_version) {
        (Some(id), Some(version)) => gw.directory.policy(id, version).await.ok(),
        _ => None,
    };
    render::run(run, render::run_limit(run, policy.as_deref()))
}

#[utoipa::path(get, path = "/runs", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_runs(
    State(gw): State<AppState>,
    parts: Parts,
    Params(q): Params<RunQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            RunStatus::parse(s)
                .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))?,
        ),
    };
    let filter = RunFilter {
        agent_id: q.agent_id.clone(),
        status,
        since_ms: parse_time("since", q.since.as_deref())?,
        until_ms: parse_time("until", q.until.as_deref())?,
        min_spend: parse_usd("min_spend_usd", q.min_spend_usd.as_deref())?,
        max_spend: parse_usd("max_spend_usd", q.max_spend_usd.as_deref())?,
        sort: q.sort.clone(),
        ascending: q.order.as_deref() == Some("asc"),
    };
    let (runs, total) = gw.stores.runs.list_runs(&filter, q.paging.page()).await?;
    let mut items = Vec::with_capacity(runs.len());
    for run in &runs {
        items.push(render_run(&gw, run).await);
    }
    Ok(list(items, total))
}

#[utoipa::path(get, path = "/runs/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn get_run(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let run = gw
        .stores
        .runs
        .get_run(&run_id(&id)?)
        .await
        .map_err(missing("run", &id))?;
    Ok(item(render_run(&gw, &run).await))
}

#[derive(Debug, Deserialize)]
pub struct StepQuery {
    order: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

#[utoipa::path(get, path = "/runs/{id}/steps", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "steps, oldest first unless order=desc")))]
pub async fn list_steps(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    Params(q): Params<StepQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let id = run_id(&id)?;
    gw.stores
        .runs
        .get_run(&id)
        .await
        .map_err(missing("run", id.as_str()))?;
    let ascending = q.order.as_deref() != Some("desc");
    let (steps, total) = gw
        .stores
        .runs
        .steps(&id, q.paging.page(), ascending)
        .await?;
    Ok(list(steps.iter().map(render::step).collect(), total))
}

#[utoipa::path(get, path = "/runs/{id}/ledger", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "ledger entries and their sum")))]
pub async fn get_ledger(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let id = run_id(&id)?;
    let run = gw
        .stores
        .runs
        .get_run(&id)
        .await
        .map_err(missing("run", id.as_str()))?;
    let entries = gw.stores.runs.ledger(&id).await?;
    let total = entries.len() as u64;
    let sum = entries
        .iter()
        .filter(|e| e.kind.is_spend())
        .fold(crate::money::UsdNanos::ZERO, |acc, e| {
            acc.saturating_add(e.amount)
        });
    Ok(axum::Json(json!({
        "data": entries.iter().map(render::ledger_entry).collect::<Vec<_>>(),
        "total": total,
        "sum_usd": sum.as_usd(),
        "run_spend_usd": run.spend.as_usd(),
    }))
    .into_response())
}

#[utoipa::path(post, path = "/runs/{id}/stop", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the stopped run")))]
pub async fn stop_run(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let admin = authorize_admin(&gw, &parts, Scope::Write).await?;
    let id = run_id(&id)?;
    let run = lifecycle::close_run(
        &gw,
        &id,
        RunStatus::Stopped,
        run::FORCE_STOPPED,
        None,
        admin.actor,
    )
    .await
    .map_err(missing("run", id.as_str()))?;
    Ok(item(render_run(&gw, &run).await))
}

#[utoipa::path(get, path = "/runs/{id}/audit", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the run's hash-chained events")))]
pub async fn get_audit(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    Params(paging): Params<Paging>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let id = run_id(&id)?;
    gw.stores
        .runs
        .get_run(&id)
        .await
        .map_err(missing("run", id.as_str()))?;
    let events = gw.stores.runs.audit_events(&id).await?;
    let total = events.len() as u64;
    let page = paging.page();
    let items = events
        .iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect();
    Ok(list(items, total))
}

#[utoipa::path(get, path = "/runs/{id}/trace", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the run as spans: run.init, llm.<model>, tool.<name>, gate.<rule>")))]
pub async fn get_trace(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let run = run_id(&id)?;
    let spans = crate::trace::load(&gw.stores, &run)
        .await
        .map_err(missing("run", &id))?;
    let trace_id = spans.first().map(|s| s.trace_id.clone());
    let rendered: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            json!({
                "trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id,
                "name": s.name, "start_time": run::rfc3339(s.start_ms), "end_time": run::rfc3339(s.end_ms),
                "duration_ms": s.end_ms - s.start_ms, "status": s.status, "attributes": s.attributes,
            })
        })
        .collect();
    Ok(item(
        json!({"run_id": id, "trace_id": trace_id, "spans": rendered}),
    ))
}

#[utoipa::path(get, path = "/runs/{id}/audit/verify", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "whether the hash chain holds")))]
pub async fn verify_audit(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let id = run_id(&id)?;
    gw.stores
        .runs
        .get_run(&id)
        .await
        .map_err(missing("run", id.as_str()))?;
    let events = gw.stores.runs.audit_events(&id).await?;
    let head = gw.stores.runs.audit_head(&id).await?;
    let body = match audit::verify(&events, &head) {
        Ok(()) => {
            json!({"valid": true, "events": events.len(), "head": events.last().map(|e| e.hash.clone())})
        }
        Err(broken) => {
            let event = events.iter().find(|e| e.seq == broken.seq);
            json!({"valid": false, "events": events.len(), "broken_at_seq": broken.seq,
                   "reason": broken.reason, "event": event.map(|e| json!({"seq": e.seq, "kind": e.kind, "actor": e.actor}))})
        }
    };
    Ok(item(body))
}
