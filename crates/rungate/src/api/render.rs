//! How domain objects look in JSON bodies of the agent and admin APIs. One function per
//! object so `/v1/runs/{id}` and `/api/runs/{id}` can never drift apart. Money leaves the
//! gateway here, as dollars with at most nine decimals.

use serde_json::{Value, json};

use crate::budget::{self, LedgerEntry};
use crate::money::UsdNanos;
use crate::policy::PolicyVersion;
use crate::run::{Run, Step, rfc3339};

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

/// A run; `limit` is its pinned hard cap, when it has one.
pub fn run(run: &Run, limit: Option<UsdNanos>) -> Value {
    json!({
        "id": run.id,
        "agent_id": run.agent_id,
        "team": run.team.strip_prefix("team:"),
        "status": run.status,
        "auto": run.auto,
        "policy_id": run.policy_id,
        "policy_version": run.policy_version,
        "total_cost_usd": run.spend.as_usd(),
        "spend_usd": run.spend.as_usd(),
        "budget_limit_usd": limit.map(UsdNanos::as_usd),
        "budget_remaining_usd": budget::remaining(limit, run.spend).map(UsdNanos::as_usd),
        "tokens": {"input": run.input_tokens, "output": run.output_tokens},
        "total_tokens": run.input_tokens + run.output_tokens,
        "steps_count": run.steps_count,
        "started_at": time(Some(run.started_at_ms)),
        "last_activity_at": time(Some(run.last_activity_ms)),
        "ended_at": time(run.ended_at_ms),
        "ended_reason": run.ended_reason,
        "metadata": run.metadata,
    })
}

pub fn step(step: &Step) -> Value {
    json!({
        "id": step.id,
        "run_id": step.run_id,
        "agent_id": step.agent_id,
        "type": step.kind,
        "provider": step.provider,
        "model": step.model,
        "tokens": {"input": step.input_tokens, "output": step.output_tokens},
        "cost_usd": step.cost.as_usd(),
        "latency_ms": step.latency_ms,
        "status": step.status,
        "http_status": step.http_status,
        "error_message": step.error_message,
        "request": step.request,
        "response": step.response,
        "created_at": time(Some(step.created_at_ms)),
        "price_version": step.price_version,
    })
}

pub fn ledger_entry(entry: &LedgerEntry) -> Value {
    json!({
        "kind": entry.kind,
        "step_id": entry.step_id,
        "amount_usd": entry.amount.as_usd(),
        "amount_nanos": entry.amount.0,
        "created_at": time(Some(entry.created_at_ms)),
    })
}

pub fn policy(policy: &PolicyVersion) -> Value {
    let mut body = serde_json::to_value(&policy.document).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), json!(policy.policy_id));
        object.insert("name".into(), json!(policy.name));
        object.insert("version".into(), json!(policy.version));
        object.insert("created_at".into(), time(Some(policy.created_at_ms)));
    }
    body
}

/// A run's hard cap as pinned by its policy.
/// The run's USD cap: the one an approver raised it to, else its pinned policy's.
pub fn run_limit(run: &Run, policy: Option<&PolicyVersion>) -> Option<UsdNanos> {
    run.budget_limit.or_else(|| {
        policy
            .and_then(|p| p.document.hard_limit_usd())
            .and_then(UsdNanos::from_usd)
    })
}
