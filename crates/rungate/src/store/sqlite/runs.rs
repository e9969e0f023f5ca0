use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, page_binds, to_u64};
use crate::audit::{AuditEvent, AuditHead, ChainedEvent};
use crate::budget::LedgerEntry;
use crate::money::UsdNanos;
use crate::run::{Run, RunId, RunStatus, RunTotals, Step};
use crate::store::runs::{
    AGENT_TOTALS, AUDIT_COLUMNS, LEDGER_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, agent_totals_from_row,
    event_from_row, ledger_from_row, run_from_row, step_from_row,
};
use crate::store::{AgentTotals, Page, RunFilter, RunStore, StepRecord, StoreError, StoreResult};

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, run: &Run, event: AuditEvent) -> StoreResult<()> {
        self.runs.create_run(run, event).await
    }

    async fn get_run(&self, id: &RunId) -> StoreResult<Run> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(run_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn list_runs(&self, f: &RunFilter, page: Page) -> StoreResult<(Vec<Run>, u64)> {
        let filter = "(?1 IS NULL OR agent_id = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR started_at >= ?3) AND (?4 IS NULL OR started_at < ?4)";
        let column = match f.sort.as_deref() {
            Some("spend") | Some("cost") => "spend_nanos",
            Some("last_activity_at") => "last_activity_at",
            _ => "started_at",
        };
        let order = if f.ascending { "ASC" } else { "DESC" };
        let (limit, offset) = page_binds(page);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {filter} ORDER BY {column} {order}, id {order} LIMIT ?5 OFFSET ?6"
        );
        let status = f.status.map(RunStatus::as_str);
        let rows = sqlx::query(&sql)
            .bind(&f.agent_id)
            .bind(status)
            .bind(f.since_ms)
            .bind(f.until_ms)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM runs WHERE {filter}"))
            .bind(&f.agent_id)
            .bind(status)
            .bind(f.since_ms)
            .bind(f.until_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let runs = rows.iter().map(run_from_row).collect::<StoreResult<_>>()?;
        Ok((runs, to_u64(total)))
    }

    async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals> {
        self.runs.record_step(record).await
    }

    async fn close_run(
        &self,
        id: &RunId,
        status: RunStatus,
        reason: &str,
        metadata: Option<&serde_json::Value>,
        event: AuditEvent,
    ) -> StoreResult<(Run, bool)> {
        let changed = self
            .runs
            .close_run(id, status, reason, metadata, event)
            .await?;
        Ok((self.get_run(id).await?, changed))
    }

    async fn tool_steps(&self, id: &RunId, tool: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM steps WHERE run_id = ? AND kind = 'tool_call' AND model = ?",
        )
        .bind(&id.0)
        .bind(tool)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(to_u64(count))
    }

    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()> {
        self.runs.append_events(id, events).await
    }

    async fn idle_runs(&self, now_ms: i64, default_idle_ms: i64) -> StoreResult<Vec<RunId>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE status = 'running' AND last_activity_at + COALESCE(idle_timeout_ms, ?) < ? LIMIT 500",
        )
        .bind(default_idle_ms)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(RunId(r.try_get(0)?))).collect()
    }

    async fn steps(
        &self,
        id: &RunId,
        page: Page,
        ascending: bool,
    ) -> StoreResult<(Vec<Step>, u64)> {
        let (limit, offset) = page_binds(page);
        let order = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY id {order} LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query(&sql)
            .bind(&id.0)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM steps WHERE run_id = ?")
            .bind(&id.0)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let steps = rows.iter().map(step_from_row).collect::<StoreResult<_>>()?;
        Ok((steps, to_u64(total)))
    }

    async fn ledger(&self, id: &RunId) -> StoreResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(&format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE run_id = ? ORDER BY created_at, step_id, kind"))
            .bind(&id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn audit_events(&self, id: &RunId) -> StoreResult<Vec<ChainedEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE run_id = ? ORDER BY seq"
        ))
        .bind(&id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn audit_head(&self, id: &RunId) -> StoreResult<AuditHead> {
        let row = sqlx::query("SELECT audit_seq, audit_head FROM runs WHERE id = ?")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(AuditHead {
            seq: row.try_get("audit_seq")?,
            hash: row.try_get("audit_head")?,
        })
    }

    async fn agent_totals(&self) -> StoreResult<Vec<AgentTotals>> {
        let rows = sqlx::query(AGENT_TOTALS).fetch_all(&self.pool).await?;
        rows.iter().map(agent_totals_from_row).collect()
    }

    async fn agent_spend_since(&self, agent_id: &str, since_ms: i64) -> StoreResult<UsdNanos> {
        let spent: Option<i64> =
            sqlx::query("SELECT SUM(cost_nanos) FROM steps WHERE agent_id = ? AND created_at >= ?")
                .bind(agent_id)
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        Ok(UsdNanos(spent.unwrap_or(0)))
    }
}
