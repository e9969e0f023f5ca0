//! Approval gates. Every transition is one transaction with the audit event that records it in
//! the run's chain, and every transition is conditional on the state it leaves, so two approvers,
//! or fifty retries, racing on one gate cannot both win.

use async_trait::async_trait;

use super::{Page, StoreResult};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus};

#[derive(Clone, Debug, Default)]
pub struct GateFilter {
    pub agent_id: Option<String>,
    pub run_id: Option<String>,
    pub status: Option<GateStatus>,
}

#[async_trait]
pub trait GateStore: Send + Sync {
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
    async fn get_gate(&self, id: &GateId) -> StoreResult<Gate>;
    /// A run's gates, oldest first.
    async fn run_gates(&self, run_id: &str) -> StoreResult<Vec<Gate>>;
    async fn list_gates(&self, filter: &GateFilter, page: Page) -> StoreResult<(Vec<Gate>, u64)>;
}
