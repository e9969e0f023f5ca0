//! `AnalyticsStore` on PostgreSQL. Unlike SQLite, other gateways keep writing while retention
//! runs, so the delete first locks the runs it removes (`FOR UPDATE`) and then deletes by that
//! fixed list of ids, not by re-evaluating "ended before" per table: a run that ends meanwhile
//! cannot be half deleted, and a step or gate being added to a locked run waits on its foreign
//! key. The preview counts in one statement, so all five numbers come from one snapshot.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::PgStore;
use crate::analytics::StepFact;
use crate::store::analytics::{FACT_COLUMNS, step_fact_from_row};
use crate::store::sql::to_u64;
use crate::store::{AnalyticsStore, FactFilter, RetentionCounts, StoreResult};

/// Runs retention may remove: ended, and ended before $1.
const ENDED: &str =
    "SELECT id FROM runs WHERE status != 'running' AND ended_at IS NOT NULL AND ended_at < $1";

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn step_facts(&self, f: &FactFilter, limit: u32) -> StoreResult<Vec<StepFact>> {
        let rows = sqlx::query(&format!(
            "SELECT {FACT_COLUMNS} FROM steps \
             WHERE ($1::text IS NULL OR agent_id = $1::text) AND ($2::text IS NULL OR provider = $2::text) AND ($3::text IS NULL OR model = $3::text) \
               AND ($4::bigint IS NULL OR created_at >= $4::bigint) AND ($5::bigint IS NULL OR created_at < $5::bigint) \
             ORDER BY created_at LIMIT $6"
        ))
        .bind(&f.agent_id)
        .bind(&f.provider)
        .bind(&f.model)
        .bind(f.since_ms)
        .bind(f.until_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_fact_from_row).collect()
    }

    async fn retention_preview(&self, before_ms: i64) -> StoreResult<RetentionCounts> {
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM ({ENDED}) ended) AS runs, \
                    (SELECT COUNT(*) FROM steps WHERE run_id IN ({ENDED})) AS steps, \
                    (SELECT COUNT(*) FROM ledger WHERE run_id IN ({ENDED})) AS ledger, \
                    (SELECT COUNT(*) FROM audit_events WHERE run_id IN ({ENDED})) AS audit_events, \
                    (SELECT COUNT(*) FROM gates WHERE run_id IN ({ENDED})) AS gates"
        ))
        .bind(before_ms)
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> StoreResult<u64> { Ok(to_u64(row.try_get(name)?)) };
        Ok(RetentionCounts {
            runs: count("runs")?,
            steps: count("steps")?,
            ledger_entries: count("ledger")?,
            audit_events: count("audit_events")?,
            approval_requests: count("gates")?,
        })
    }

    async fn delete_ended_before(&self, before_ms: i64) -> StoreResult<RetentionCounts> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(&format!("{ENDED} FOR UPDATE"))
            .bind(before_ms)
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(RetentionCounts::default());
        }
        let steps = delete(&mut tx, "steps", "run_id", &ids).await?;
        let ledger_entries = delete(&mut tx, "ledger", "run_id", &ids).await?;
        let audit_events = delete(&mut tx, "audit_events", "run_id", &ids).await?;
        let approval_requests = delete(&mut tx, "gates", "run_id", &ids).await?;
        // Holds left by a gateway that died mid-call: they reference the run, and an ended run
        // admits nothing, so they go with it (not counted: they are not history).
        delete(&mut tx, "run_holds", "run_id", &ids).await?;
        delete(&mut tx, "run_tool_proposals", "run_id", &ids).await?;
        let runs = delete(&mut tx, "runs", "id", &ids).await?;
        tx.commit().await?;
        Ok(RetentionCounts {
            runs,
            steps,
            ledger_entries,
            audit_events,
            approval_requests,
        })
    }
}

/// Deletes the rows of `table` whose `column` is one of `ids`.
async fn delete(
    tx: &mut PgConnection,
    table: &str,
    column: &str,
    ids: &[String],
) -> StoreResult<u64> {
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE {column} = ANY($1)"))
        .bind(ids)
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}
