//! Approval gates. Every transition is one transaction with the audit event that records it in
//! the run's chain, and every transition is conditional on the state it leaves, so two approvers,
//! or fifty retries, racing on one gate cannot both win.

use async_trait::async_trait;

use super::StoreError;
use super::sql::{Columns, json_column};
use super::{Page, StoreResult};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus, HeldAnswer, Trigger};

#[derive(Clone, Debug, Default)]
pub struct GateFilter {
    pub agent_id: Option<String>,
    pub run_id: Option<String>,
    pub status: Option<GateStatus>,
}

/// What is read about gates: the same SQL on every backend (`store::sql::gates`).
#[async_trait]
pub trait GateReads: Send + Sync {
    async fn get_gate(&self, id: &GateId) -> StoreResult<Gate>;
    /// A run's gates, oldest first.
    async fn run_gates(&self, run_id: &str) -> StoreResult<Vec<Gate>>;
    async fn list_gates(&self, filter: &GateFilter, page: Page) -> StoreResult<(Vec<Gate>, u64)>;
}

#[async_trait]
pub trait GateStore: GateReads {
    /// Opens `gates` (one request's group) with their `approval.pending` events — unless the run
    /// already has open gates for the same request, which are returned instead, so concurrent
    /// identical calls share one request for approval.
    async fn open_gates(
        &self,
        gates: Vec<Gate>,
        events: Vec<AuditEvent>,
        now_ms: i64,
    ) -> StoreResult<Vec<Gate>>;
    /// Moves a pending gate in its time to the decision's status. `Conflict` when it is not
    /// pending any more (decided, or expired), `NotFound` when it does not exist.
    async fn decide_gate(
        &self,
        id: &GateId,
        decision: &Decision,
        event: AuditEvent,
    ) -> StoreResult<Gate>;
    /// Uses the approval of every gate in `ids` for one retry: true for exactly one caller,
    /// false when any of them is not approved or was already used.
    async fn consume_gates(
        &self,
        run_id: &str,
        ids: &[GateId],
        event: AuditEvent,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Records pending gates whose time ran out as `expired`, each with its event; returns them.
    async fn expire_gates(&self, now_ms: i64) -> StoreResult<Vec<Gate>>;
}

pub(super) const GATE_COLUMNS: &str = "id, run_id, agent_id, trigger, rule, tool, args, approver_channel, fingerprint, status, created_at, expires_at, decided_at, decided_by, reason, consumed_at, held_status, held_content_type, held_body, held_step_id";

pub(super) fn gate_from_row(row: &impl Columns) -> StoreResult<Gate> {
    let status: String = row.col("status")?;
    let trigger: String = row.col("trigger")?;
    let args: String = row.col("args")?;
    let held_status: Option<i64> = row.col("held_status")?;
    let held = match held_status {
        Some(status) => Some(HeldAnswer {
            status: u16::try_from(status).unwrap_or(200),
            content_type: row
                .col::<Option<String>>("held_content_type")?
                .unwrap_or_default(),
            body: row.col::<Option<Vec<u8>>>("held_body")?.unwrap_or_default(),
            step_id: row
                .col::<Option<String>>("held_step_id")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Gate {
        id: GateId(row.col("id")?),
        run_id: row.col("run_id")?,
        agent_id: row.col("agent_id")?,
        trigger: Trigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("gate trigger {trigger}")))?,
        rule: row.col("rule")?,
        tool: row.col("tool")?,
        args: json_column(&args, "args")?,
        approver_channel: row.col("approver_channel")?,
        fingerprint: row.col("fingerprint")?,
        status: GateStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("gate status {status}")))?,
        created_at_ms: row.col("created_at")?,
        expires_at_ms: row.col("expires_at")?,
        decided_at_ms: row.col("decided_at")?,
        decided_by: row.col("decided_by")?,
        reason: row.col("reason")?,
        consumed_at_ms: row.col("consumed_at")?,
        held,
    })
}

/// The `Conflict` of deciding a gate that is no longer pending.
pub(super) fn undecidable(gate: &Gate, at_ms: i64) -> StoreError {
    StoreError::Conflict(format!(
        "approval request {} is {} and can no longer be decided",
        gate.id,
        if gate.is_overdue(at_ms) {
            "expired"
        } else {
            gate.status.as_str()
        }
    ))
}
