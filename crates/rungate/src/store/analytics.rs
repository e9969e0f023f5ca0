//! What analytics and retention need from storage: the steps of a window, and deleting runs
//! that ended long ago together with everything that belongs to them.

use async_trait::async_trait;

use super::StoreResult;
use super::sql::{Columns, to_u64};
use crate::analytics::StepFact;
use crate::money::UsdNanos;

#[derive(Clone, Debug, Default)]
pub struct FactFilter {
    pub agent_id: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Rows that retention removes (or would remove), by table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionCounts {
    pub runs: u64,
    pub steps: u64,
    pub ledger_entries: u64,
    pub audit_events: u64,
    pub approval_requests: u64,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Steps in the window, oldest first (at most `limit`).
    async fn step_facts(&self, filter: &FactFilter, limit: u32) -> StoreResult<Vec<StepFact>>;
    /// What [`AnalyticsStore::delete_ended_before`] would remove.
    async fn retention_preview(&self, before_ms: i64) -> StoreResult<RetentionCounts>;
    /// Deletes runs that ended before `before_ms` (running runs are never touched), with their
    /// steps, ledger, audit chain and approval requests, in one transaction.
    async fn delete_ended_before(&self, before_ms: i64) -> StoreResult<RetentionCounts>;
}

/// The `steps` columns a [`StepFact`] is read from.
pub(super) const FACT_COLUMNS: &str = "run_id, agent_id, provider, model, kind, status, latency_ms, cost_nanos, input_tokens, output_tokens, created_at";

pub(super) fn step_fact_from_row(row: &impl Columns) -> StoreResult<StepFact> {
    Ok(StepFact {
        run_id: row.col("run_id")?,
        agent_id: row.col("agent_id")?,
        provider: row.col("provider")?,
        model: row.col("model")?,
        llm: row.col::<String>("kind")? == "llm_call",
        status: row.col("status")?,
        latency_ms: to_u64(row.col("latency_ms")?),
        cost: UsdNanos(row.col("cost_nanos")?),
        input_tokens: to_u64(row.col("input_tokens")?),
        output_tokens: to_u64(row.col("output_tokens")?),
        created_at_ms: row.col("created_at")?,
    })
}
