//! How runs end: an agent completes its run, an operator stops it, or the sweeper completes
//! it after its idle window. All three go through [`close_run`], which writes the transition and
//! its audit event in one transaction and then retires the live run, so a call racing the close
//! either lands before it or is refused after it.

use std::sync::Arc;

use serde_json::json;

use crate::app::Gateway;
use crate::audit::AuditEvent;
use crate::run::{self, Run, RunId, RunStatus};
use crate::store::StoreResult;

/// Closes a running run; returns it unchanged when it was already closed (idempotent).
pub async fn close_run(
    gw: &Gateway,
    id: &RunId,
    status: RunStatus,
    reason: &str,
    metadata: Option<&serde_json::Value>,
    actor: String,
) -> StoreResult<Run> {
    let kind = match status {
        RunStatus::Stopped => "run.stopped",
        RunStatus::Completed | RunStatus::Running => "run.completed",
    };
    let event = AuditEvent {
        kind,
        actor,
        data: json!({"status": status, "ended_reason": reason}),
        at_ms: run::now_ms(),
    };
    let (closed, changed) = gw
        .stores
        .runs
        .close_run(id, status, reason, metadata, event)
        .await?;
    if changed || closed.status != RunStatus::Running {
        gw.runs.close(id);
    }
    if changed {
        tracing::info!(run_id = %id, status = status.as_str(), reason, "run closed");
        crate::notify::otlp::export_run(gw, id);
    }
    Ok(closed)
}

/// Every `sweep_interval`: records approval requests whose time ran out as expired (so their
/// `approval.expired` events are timely), and completes runs left idle past their window — except
/// runs paused behind an open approval request, which are waiting for a person, not idle.
pub async fn sweep_idle_runs(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(gw.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let default_idle_ms =
        i64::try_from(gw.config.default_idle_timeout.as_millis()).unwrap_or(i64::MAX);
    loop {
        tick.tick().await;
        if let Err(err) = super::gates::expire_due(&gw, run::now_ms()).await {
            tracing::error!(error = %err, "approval expiry sweep failed");
        }
        let idle = match gw
            .stores
            .runs
            .idle_runs(run::now_ms(), default_idle_ms)
            .await
        {
            Ok(idle) => idle,
            Err(err) => {
                tracing::error!(error = %err, "idle sweep failed");
                continue;
            }
        };
        for id in idle {
            // A call may have joined since the query; the live view has the freshest activity.
            if gw
                .runs
                .get(&id)
                .is_some_and(|live| !live.idle_since(run::now_ms()))
            {
                continue;
            }
            if awaits_approval(&gw, &id).await {
                continue;
            }
            if let Err(err) = close_run(
                &gw,
                &id,
                RunStatus::Completed,
                run::IDLE_TIMEOUT,
                None,
                "system:sweeper".into(),
            )
            .await
            {
                tracing::error!(run_id = %id, error = %err, "failed to complete an idle run");
            }
        }
        gw.metrics
            .open_runs
            .set(i64::try_from(gw.runs.len()).unwrap_or(i64::MAX));
    }
}

/// Whether the run is paused behind a pending approval request (a failed lookup counts as
/// paused: closing a run someone is about to approve loses the work).
async fn awaits_approval(gw: &Gateway, id: &RunId) -> bool {
    let now = run::now_ms();
    match gw.stores.gates.run_gates(id.as_str()).await {
        Ok(gates) => gates.iter().any(|g| g.is_open(now)),
        Err(err) => {
            tracing::warn!(run_id = %id, error = %err, "cannot read the run's approval requests; not closing it");
            true
        }
    }
}
