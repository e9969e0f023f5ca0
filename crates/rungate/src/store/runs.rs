//! Runs, their steps, ledger and audit chain. Every mutating method is one transaction that
//! also appends the audit events describing it.

use async_trait::async_trait;

use super::{Page, StoreResult};
use crate::audit::{AuditEvent, AuditHead, ChainedEvent};
use crate::budget::LedgerEntry;
use crate::run::{Run, RunId, RunStatus, RunTotals, Step};

#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub agent_id: Option<String>,
    pub status: Option<RunStatus>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// `started_at` (default), `spend`, `last_activity_at`.
    pub sort: Option<String>,
    pub ascending: bool,
}

/// What one agent's runs add up to.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentTotals {
    pub agent_id: String,
    pub runs: u64,
    pub spend: crate::money::UsdNanos,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub steps: u64,
}

/// A step with the ledger entries and audit events that go with it.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub step: Step,
    pub ledger: Vec<LedgerEntry>,
    pub audit: Vec<AuditEvent>,
}

#[async_trait]
pub trait RunStore: Send + Sync {
    /// Inserts a new run with its `run.started` event; `Conflict` when the id exists.
    async fn create_run(&self, run: &Run, event: AuditEvent) -> StoreResult<()>;
    async fn get_run(&self, id: &RunId) -> StoreResult<Run>;
    async fn list_runs(&self, filter: &RunFilter, page: Page) -> StoreResult<(Vec<Run>, u64)>;
    /// Appends a step, its ledger entries and audit events, and updates the run's totals,
    /// in one transaction. Returns the run's totals as committed.
    async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals>;
    /// Moves a running run to `status`. Returns the run and whether this call closed it
    /// (false when it was already closed: closing is idempotent).
    async fn close_run(
        &self,
        id: &RunId,
        status: RunStatus,
        reason: &str,
        metadata: Option<&serde_json::Value>,
        event: AuditEvent,
    ) -> StoreResult<(Run, bool)>;
    /// How many `tool_call` steps named `tool` the run has recorded.
    async fn tool_steps(&self, id: &RunId, tool: &str) -> StoreResult<u64>;
    /// Appends events to a run's audit chain (refusals, alerts, policy drift).
    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()>;
    /// Running runs whose last activity is older than their idle window.
    async fn idle_runs(&self, now_ms: i64, default_idle_ms: i64) -> StoreResult<Vec<RunId>>;
    async fn steps(&self, id: &RunId, page: Page, ascending: bool)
    -> StoreResult<(Vec<Step>, u64)>;
    async fn ledger(&self, id: &RunId) -> StoreResult<Vec<LedgerEntry>>;
    async fn audit_events(&self, id: &RunId) -> StoreResult<Vec<ChainedEvent>>;
    /// Where the run's chain ends, as the run records it.
    async fn audit_head(&self, id: &RunId) -> StoreResult<AuditHead>;
    /// What an agent's steps cost since `since_ms` (seeds the hourly cap after a start).
    async fn agent_spend_since(
        &self,
        agent_id: &str,
        since_ms: i64,
    ) -> StoreResult<crate::money::UsdNanos>;
    /// Totals per agent over the runs it started.
    async fn agent_totals(&self) -> StoreResult<Vec<AgentTotals>>;
}
