//! `/api/approval-requests`: the approver's side of SPEC §6. Listing needs `read` or `approve`;
//! deciding needs `approve` or `write`. Agent tokens never reach here (see `api::auth`), so an
//! agent cannot approve its own gate. Who decided, when and why is stored on the gate and goes
//! into the run's audit chain in the same transaction.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Paging, Params, item, list, missing, parse_body};
use crate::api::auth::{Admin, authorize_admin_any};
use crate::api::call::read_body;
use crate::api::error::ApiError;
use crate::app::{AppState, Gateway};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus, Trigger};
use crate::money::UsdNanos;
use crate::notify::GateEvent;
use crate::run;
use crate::run::RunId;
use crate::store::{GateFilter, Scope};

const READERS: &[Scope] = &[Scope::Read, Scope::Approve];
const DECIDERS: &[Scope] = &[Scope::Approve, Scope::Write];

#[derive(Debug, Deserialize)]
pub struct GateQuery {
    agent_id: Option<String>,
    run_id: Option<String>,
    status: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// `{"reason"?}` of approve and reject; approving a budget gate may also set the run's new cap
/// (`hard_limit_usd`), by default just enough for the call that paused it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    hard_limit_usd: Option<f64>,
}

/// A gate as the API shows it (the held answer's bytes stay in the store).
pub fn render(gate: &Gate, now_ms: i64) -> Value {
    let status = if gate.is_overdue(now_ms) {
        GateStatus::Expired
    } else {
        gate.status
    };
    json!({
        "id": gate.id, "run_id": gate.run_id, "agent_id": gate.agent_id,
        "status": status.as_str(), "trigger": gate.trigger.as_str(), "rule": gate.rule,
        "tool": gate.tool, "tool_name": gate.tool,
        "proposed_action": {"tool": gate.tool, "args": gate.args},
        "approver_channel": gate.approver_channel,
        "holds_answer": gate.held.is_some(),
        "created_at": run::rfc3339(gate.created_at_ms),
        "expires_at": run::rfc3339(gate.expires_at_ms),
        "decided_at": gate.decided_at_ms.map(run::rfc3339),
        "decided_by": gate.decided_by, "reason": gate.reason,
        "consumed_at": gate.consumed_at_ms.map(run::rfc3339),
    })
}

/// Pending gates past their time are recorded as expired before anyone reads them.
async fn expire_due(gw: &Gateway) -> Result<(), ApiError> {
    crate::proxy::gates::expire_due(gw, run::now_ms()).await?;
    Ok(())
}

#[utoipa::path(get, path = "/approval-requests", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_gates(
    State(gw): State<AppState>,
    parts: Parts,
    Params(q): Params<GateQuery>,
) -> Result<Response, ApiError> {
    authorize_admin_any(&gw, &parts, READERS).await?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            GateStatus::parse(s)
                .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))?,
        ),
    };
    expire_due(&gw).await?;
    let filter = GateFilter {
        agent_id: q.agent_id,
        run_id: q.run_id,
        status,
    };
    let (gates, total) = gw.stores.gates.list_gates(&filter, q.paging.page()).await?;
    let now = run::now_ms();
    Ok(list(gates.iter().map(|g| render(g, now)).collect(), total))
}

#[utoipa::path(get, path = "/approval-requests/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "item"), (status = 404, description = "not_found")))]
pub async fn get_gate(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, ApiError> {
    authorize_admin_any(&gw, &parts, READERS).await?;
    expire_due(&gw).await?;
    let gate = gw
        .stores
        .gates
        .get_gate(&GateId(id.clone()))
        .await
        .map_err(missing("approval request", &id))?;
    Ok(item(render(&gate, run::now_ms())))
}

#[utoipa::path(post, path = "/approval-requests/{id}/approve", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "the approved request"), (status = 409, description = "already decided or expired")))]
pub async fn approve_gate(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    decide(&gw, id, request, GateStatus::Approved).await
}

#[utoipa::path(post, path = "/approval-requests/{id}/reject", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "the rejected request"), (status = 409, description = "already decided or expired")))]
pub async fn reject_gate(
    State(gw): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    decide(&gw, id, request, GateStatus::Rejected).await
}

async fn decide(
    gw: &Gateway,
    id: String,
    request: Request,
    status: GateStatus,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let Admin { actor } = authorize_admin_any(gw, &parts, DECIDERS).await?;
    let bytes = read_body(body, &parts.headers, gw.config.max_body_bytes).await?;
    let body: DecisionBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else {
        parse_body(&bytes)?
    };
    let id = GateId(id);
    let gate = gw
        .stores
        .gates
        .get_gate(&id)
        .await
        .map_err(missing("approval request", id.as_str()))?;
    let now = run::now_ms();
    if gate.is_overdue(now) {
        expire_due(gw).await?;
    }
    let raise_limit = raised_limit(&gate, status, body.hard_limit_usd)?;
    let decision = Decision {
        status,
        actor: actor.clone(),
        reason: body.reason,
        at_ms: now,
        raise_limit,
    };
    let kind = match status {
        GateStatus::Approved => "approval.approved",
        _ => "approval.rejected",
    };
    let event = AuditEvent {
        kind,
        actor,
        data: json!({"gate_id": id, "tool": gate.tool, "rule": gate.rule, "reason": decision.reason,
                     "raised_limit_usd": raise_limit.map(UsdNanos::as_usd)}),
        at_ms: now,
    };
    let decided = gw.stores.gates.decide_gate(&id, &decision, event).await?;
    if let (Some(limit), Some(live)) = (raise_limit, gw.runs.get(&RunId(decided.run_id.clone()))) {
        live.raise_usd_limit(limit);
    }
    let told = match status {
        GateStatus::Approved => GateEvent::Approved,
        _ => GateEvent::Rejected,
    };
    gw.notifier.gates(told, std::slice::from_ref(&decided));
    gw.metrics
        .record_gates(decided.trigger.as_str(), decided.status.as_str(), 1);
    tracing::info!(gate_id = %id, run_id = %decided.run_id, status = status.as_str(), decided_by = %decision.actor, "approval request decided");
    Ok(item(render(&decided, now)))
}

/// The cap a budget gate's approval raises the run to: the approver's, else what the paused call
/// needed. Other decisions raise nothing, and may not try to.
fn raised_limit(
    gate: &Gate,
    status: GateStatus,
    requested: Option<f64>,
) -> Result<Option<UsdNanos>, ApiError> {
    let budget_approval = gate.trigger == Trigger::Budget && status == GateStatus::Approved;
    if !budget_approval {
        return match requested {
            Some(_) => Err(ApiError::invalid(
                "hard_limit_usd applies only when approving a budget approval request",
            )),
            None => Ok(None),
        };
    }
    let usd = |field: &str| gate.args[field].as_f64().and_then(UsdNanos::from_usd);
    let limit = match requested {
        Some(usd) => UsdNanos::from_usd(usd)
            .ok_or_else(|| ApiError::invalid("hard_limit_usd must be a non-negative number"))?,
        None => usd("needed_limit_usd").ok_or_else(|| {
            ApiError::invalid("this request does not say what cap it needs; give hard_limit_usd")
        })?,
    };
    if usd("limit_usd").is_some_and(|current| limit <= current) {
        return Err(ApiError::invalid(format!(
            "hard_limit_usd must be above the run's current cap of {} USD",
            gate.args["limit_usd"]
        )));
    }
    Ok(Some(limit))
}
