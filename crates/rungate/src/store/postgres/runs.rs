//! `RunStore` on PostgreSQL. Every change to a run starts by locking its row (see `audit`), so
//! steps settled by different gateways add up, and the chain each appends to stays one chain.
//! Steps go through the group writer (`writer`): four round trips a group of steps.

use async_trait::async_trait;

use super::PgStore;
use super::audit;
use crate::audit::AuditEvent;
use crate::run::{Run, RunId, RunStatus, RunTotals};
use crate::store::runs::RUN_COLUMNS;
use crate::store::sql::{conflict_or, to_i64};
use crate::store::{RunReads, RunStore, StepRecord, StoreResult};

crate::store::sql::runs::run_reads!(PgStore);

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

    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        audit::append(&mut tx, &id.0, &events).await?;
        tx.commit().await?;
        Ok(())
    }
}
