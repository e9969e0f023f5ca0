//! `RunStore` on PostgreSQL. Every change to a run starts by locking its row (see `audit`), so
//! steps settled by different gateways add up, and the chain each appends to stays one chain.
//! Steps go through the group writer (`writer`): four round trips a group of steps.

use async_trait::async_trait;
use sqlx::Row;

use super::PgStore;
use super::audit;
use crate::audit::{AuditEvent, AuditHead, ChainedEvent};
use crate::budget::LedgerEntry;
use crate::money::UsdNanos;
use crate::run::{Run, RunId, RunStatus, RunTotals, Step};
use crate::store::runs::{
    AGENT_TOTALS, AUDIT_COLUMNS, LEDGER_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, agent_totals_from_row,
    event_from_row, ledger_from_row, run_from_row, step_from_row,
};
use crate::store::sql::{conflict_or, page_binds, to_i64, to_u64};
use crate::store::{AgentTotals, Page, RunFilter, RunStore, StepRecord, StoreError, StoreResult};

#[async_trait]
impl RunStore for PgStore {
    async fn create_run(&self, r: &Run, event: AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(&r.id.0)
        .bind(&r.agent_id)
        .bind(&r.team)
        .bind(&r.policy_id)
        .bind(r.policy_version)
        .bind(r.status.as_str())
        .bind(i64::from(r.auto))
        .bind(r.spend.0)
        .bind(to_i64(r.input_tokens))
        .bind(to_i64(r.output_tokens))
        .bind(to_i64(r.steps_count))
        .bind(r.started_at_ms)
        .bind(r.last_activity_ms)
        .bind(r.idle_timeout_ms)
        .bind(r.ended_at_ms)
        .bind(&r.ended_reason)
        .bind(r.metadata.to_string())
        .bind(r.budget_limit.map(|l| l.0))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "a run with this id already exists"))?;
        audit::append(&mut tx, &r.id.0, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_run(&self, id: &RunId) -> StoreResult<Run> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(run_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn list_runs(&self, f: &RunFilter, page: Page) -> StoreResult<(Vec<Run>, u64)> {
        let filter = "($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR started_at >= $3) AND ($4::bigint IS NULL OR started_at < $4)";
        let column = match f.sort.as_deref() {
            Some("spend") | Some("cost") => "spend_nanos",
            Some("last_activity_at") => "last_activity_at",
            _ => "started_at",
        };
        let order = if f.ascending { "ASC" } else { "DESC" };
        let (limit, offset) = page_binds(page);
        let status = f.status.map(RunStatus::as_str);
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS}, COUNT(*) OVER () AS total FROM runs WHERE {filter} ORDER BY {column} {order}, id {order} LIMIT $5 OFFSET $6"
        ))
        .bind(&f.agent_id)
        .bind(status)
        .bind(f.since_ms)
        .bind(f.until_ms)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = match rows.first() {
            Some(row) => to_u64(row.try_get("total")?),
            // An empty page past the end still reports the total.
            None => to_u64(
                sqlx::query(&format!("SELECT COUNT(*) FROM runs WHERE {filter}"))
                    .bind(&f.agent_id)
                    .bind(status)
                    .bind(f.since_ms)
                    .bind(f.until_ms)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?,
            ),
        };
        let runs = rows.iter().map(run_from_row).collect::<StoreResult<_>>()?;
        Ok((runs, total))
    }

    async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals> {
        self.writer.record_step(record).await
    }

    async fn close_run(
        &self,
        id: &RunId,
        status: RunStatus,
        reason: &str,
        metadata: Option<&serde_json::Value>,
        event: AuditEvent,
    ) -> StoreResult<(Run, bool)> {
        let mut tx = self.pool.begin().await?;
        audit::lock_run(&mut tx, &id.0).await?;
        let changed = sqlx::query(
            "UPDATE runs SET status = $1, ended_reason = $2, ended_at = $3, metadata = COALESCE($4, metadata) WHERE id = $5 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(event.at_ms)
        .bind(metadata.map(|m| m.to_string()))
        .bind(&id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if changed {
            audit::append(&mut tx, &id.0, std::slice::from_ref(&event)).await?;
        }
        tx.commit().await?;
        Ok((self.get_run(id).await?, changed))
    }

    async fn tool_steps(&self, id: &RunId, tool: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM steps WHERE run_id = $1 AND kind = 'tool_call' AND model = $2",
        )
        .bind(&id.0)
        .bind(tool)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(to_u64(count))
    }

    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        audit::append(&mut tx, &id.0, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn idle_runs(&self, now_ms: i64, default_idle_ms: i64) -> StoreResult<Vec<RunId>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE status = 'running' AND last_activity_at + COALESCE(idle_timeout_ms, $1) < $2 LIMIT 500",
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
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY id {order} LIMIT $2 OFFSET $3"
        ))
        .bind(&id.0)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM steps WHERE run_id = $1")
            .bind(&id.0)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let steps = rows.iter().map(step_from_row).collect::<StoreResult<_>>()?;
        Ok((steps, to_u64(total)))
    }

    async fn ledger(&self, id: &RunId) -> StoreResult<Vec<LedgerEntry>> {
        sqlx::query(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE run_id = $1 ORDER BY created_at, step_id, kind"
        ))
        .bind(&id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(ledger_from_row)
        .collect()
    }

    async fn audit_events(&self, id: &RunId) -> StoreResult<Vec<ChainedEvent>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE run_id = $1 ORDER BY seq"
        ))
        .bind(&id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn audit_head(&self, id: &RunId) -> StoreResult<AuditHead> {
        let row = sqlx::query("SELECT audit_seq, audit_head FROM runs WHERE id = $1")
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
        sqlx::query(AGENT_TOTALS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(agent_totals_from_row)
            .collect()
    }

    async fn agent_spend_since(&self, agent_id: &str, since_ms: i64) -> StoreResult<UsdNanos> {
        let spent: Option<i64> = sqlx::query(
            "SELECT CAST(SUM(cost_nanos) AS BIGINT) FROM steps WHERE agent_id = $1 AND created_at >= $2",
        )
        .bind(agent_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(UsdNanos(spent.unwrap_or(0)))
    }
}
