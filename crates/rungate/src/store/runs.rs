//! Runs, their steps, ledger and audit chain. Every mutating method is one transaction that
//! also appends the audit events describing it.

use async_trait::async_trait;

use super::StoreError;
use super::sql::{Columns, json_column, to_u64};
use super::{Page, StoreResult};
use crate::audit::{AuditEvent, AuditHead, ChainedEvent};
use crate::budget::{LedgerEntry, LedgerKind};
use crate::money::UsdNanos;
use crate::run::{Run, RunId, RunStatus, RunTotals, Step, StepId, StepKind, StepStatus};

#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub agent_id: Option<String>,
    pub status: Option<RunStatus>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Runs that spent at least / at most this much (both bounds inclusive).
    pub min_spend: Option<UsdNanos>,
    pub max_spend: Option<UsdNanos>,
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
    /// The shared-books hold the step settles, removed in the same transaction (PostgreSQL).
    pub hold_id: Option<String>,
    /// An event to append only if this step takes the run's spend across `threshold`: decided
    /// in the store, against the committed spend, so a run alerts once however many gateways
    /// settle its steps.
    pub alert: Option<Crossing>,
}

/// An event due when a run's spend first reaches `threshold`; the store adds the spend
/// reached (`spend_nanos`) to its data.
#[derive(Clone, Debug)]
pub struct Crossing {
    pub threshold: crate::money::UsdNanos,
    pub event: AuditEvent,
}

impl Crossing {
    /// The event, if a step moving the spend from `before` to `after` crosses the threshold.
    pub fn crossed(
        &self,
        before: crate::money::UsdNanos,
        after: crate::money::UsdNanos,
    ) -> Option<AuditEvent> {
        if before >= self.threshold || after < self.threshold {
            return None;
        }
        let mut event = self.event.clone();
        if let serde_json::Value::Object(data) = &mut event.data {
            data.insert("spend_nanos".into(), after.0.into());
        }
        Some(event)
    }
}

/// What is read about runs: the same SQL on every backend (`store::sql::runs`).
#[async_trait]
pub trait RunReads: Send + Sync {
    async fn get_run(&self, id: &RunId) -> StoreResult<Run>;
    async fn list_runs(&self, filter: &RunFilter, page: Page) -> StoreResult<(Vec<Run>, u64)>;
    /// How many `tool_call` steps named `tool` the run has recorded.
    async fn tool_steps(&self, id: &RunId, tool: &str) -> StoreResult<u64>;
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

/// Changes to runs; every mutating method is one transaction with its audit events.
#[async_trait]
pub trait RunStore: RunReads {
    /// Inserts a new run with its `run.started` event; `Conflict` when the id exists.
    async fn create_run(&self, run: &Run, event: AuditEvent) -> StoreResult<()>;
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
    /// Appends events to a run's audit chain (refusals, alerts, policy drift).
    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()>;
}

pub(super) fn run_from_row(row: &impl Columns) -> StoreResult<Run> {
    let status: String = row.col("status")?;
    let metadata: String = row.col("metadata")?;
    Ok(Run {
        id: RunId(row.col("id")?),
        agent_id: row.col("agent_id")?,
        team: row.col("team")?,
        policy_id: row.col("policy_id")?,
        policy_version: row.col("policy_version")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?,
        auto: row.col::<i64>("auto")? != 0,
        spend: UsdNanos(row.col("spend_nanos")?),
        input_tokens: to_u64(row.col("input_tokens")?),
        output_tokens: to_u64(row.col("output_tokens")?),
        steps_count: to_u64(row.col("steps_count")?),
        started_at_ms: row.col("started_at")?,
        last_activity_ms: row.col("last_activity_at")?,
        idle_timeout_ms: row.col("idle_timeout_ms")?,
        ended_at_ms: row.col("ended_at")?,
        ended_reason: row.col("ended_reason")?,
        metadata: json_column(&metadata, "metadata")?,
        budget_limit: row.col::<Option<i64>>("budget_limit_nanos")?.map(UsdNanos),
    })
}

pub(super) fn step_from_row(row: &impl Columns) -> StoreResult<Step> {
    let kind: String = row.col("kind")?;
    let status: String = row.col("status")?;
    let optional_json = |column: &str| -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = row.col(column)?;
        text.map(|t| json_column(&t, column)).transpose()
    };
    Ok(Step {
        id: StepId(row.col("id")?),
        run_id: RunId(row.col("run_id")?),
        agent_id: row.col("agent_id")?,
        kind: match kind.as_str() {
            "tool_call" => StepKind::ToolCall,
            _ => StepKind::LlmCall,
        },
        provider: row.col("provider")?,
        model: row.col("model")?,
        input_tokens: to_u64(row.col("input_tokens")?),
        output_tokens: to_u64(row.col("output_tokens")?),
        cost: UsdNanos(row.col("cost_nanos")?),
        latency_ms: to_u64(row.col("latency_ms")?),
        status: StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("step status {status}")))?,
        http_status: row
            .col::<Option<i64>>("http_status")?
            .and_then(|s| u16::try_from(s).ok()),
        error_message: row.col("error_message")?,
        request: optional_json("request")?,
        response: optional_json("response")?,
        created_at_ms: row.col("created_at")?,
        price_version: row.col("price_version")?,
    })
}

pub(super) fn kind_str(kind: StepKind) -> &'static str {
    match kind {
        StepKind::LlmCall => "llm_call",
        StepKind::ToolCall => "tool_call",
    }
}

pub(super) fn status_str(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Success => "success",
        StepStatus::Error => "error",
        StepStatus::Timeout => "timeout",
        StepStatus::Blocked => "blocked",
    }
}

pub(super) const RUN_COLUMNS: &str = "id, agent_id, team, policy_id, policy_version, status, auto, spend_nanos, input_tokens, output_tokens, steps_count, started_at, last_activity_at, idle_timeout_ms, ended_at, ended_reason, metadata, budget_limit_nanos";
pub(super) const STEP_COLUMNS: &str = "id, run_id, agent_id, kind, provider, model, input_tokens, output_tokens, cost_nanos, latency_ms, status, http_status, error_message, request, response, created_at, price_version";
pub(super) const LEDGER_COLUMNS: &str = "step_id, kind, amount_nanos, created_at";
pub(super) const AUDIT_COLUMNS: &str = "run_id, seq, kind, actor, data, at, prev_hash, hash";
/// Per-agent totals; the sums are cast because PostgreSQL sums BIGINTs to NUMERIC.
pub(super) const AGENT_TOTALS: &str = "SELECT agent_id, COUNT(*) AS runs, CAST(SUM(spend_nanos) AS BIGINT) AS spend, CAST(SUM(input_tokens) AS BIGINT) AS input, CAST(SUM(output_tokens) AS BIGINT) AS output, CAST(SUM(steps_count) AS BIGINT) AS steps FROM runs GROUP BY agent_id";

pub(super) fn ledger_from_row(row: &impl Columns) -> StoreResult<LedgerEntry> {
    let kind: String = row.col("kind")?;
    Ok(LedgerEntry {
        kind: LedgerKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("ledger kind {kind}")))?,
        step_id: row.col("step_id")?,
        amount: UsdNanos(row.col("amount_nanos")?),
        created_at_ms: row.col("created_at")?,
    })
}

pub(super) fn event_from_row(row: &impl Columns) -> StoreResult<ChainedEvent> {
    let data: String = row.col("data")?;
    Ok(ChainedEvent {
        run_id: row.col("run_id")?,
        seq: row.col("seq")?,
        kind: row.col("kind")?,
        actor: row.col("actor")?,
        data: json_column(&data, "data")?,
        at_ms: row.col("at")?,
        prev_hash: row.col("prev_hash")?,
        hash: row.col("hash")?,
    })
}

pub(super) fn agent_totals_from_row(row: &impl Columns) -> StoreResult<AgentTotals> {
    Ok(AgentTotals {
        agent_id: row.col("agent_id")?,
        runs: to_u64(row.col("runs")?),
        spend: UsdNanos(row.col("spend")?),
        input_tokens: to_u64(row.col("input")?),
        output_tokens: to_u64(row.col("output")?),
        steps: to_u64(row.col("steps")?),
    })
}
