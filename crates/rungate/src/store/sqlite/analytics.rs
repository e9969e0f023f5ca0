//! `AnalyticsStore` on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, to_u64};
use crate::analytics::StepFact;
use crate::store::analytics::{FACT_COLUMNS, step_fact_from_row};
use crate::store::{AnalyticsStore, FactFilter, RetentionCounts, StoreResult};

/// Runs retention may remove: ended, and ended before ?1.
const ENDED: &str =
    "SELECT id FROM runs WHERE status != 'running' AND ended_at IS NOT NULL AND ended_at < ?1";

/// The tables that hang off a run, by the column naming it.
const CHILDREN: [(&str, &str); 4] = [
    ("steps", "run_id"),
    ("ledger", "run_id"),
    ("audit_events", "run_id"),
    ("gates", "run_id"),
];

fn counts(values: [u64; 5]) -> RetentionCounts {
    let [runs, steps, ledger_entries, audit_events, approval_requests] = values;
    RetentionCounts {
        runs,
        steps,
        ledger_entries,
        audit_events,
        approval_requests,
    }
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn step_facts(&self, f: &FactFilter, limit: u32) -> StoreResult<Vec<StepFact>> {
        let rows = sqlx::query(&format!(
            "SELECT {FACT_COLUMNS} FROM steps \
             WHERE (?1 IS NULL OR agent_id = ?1) AND (?2 IS NULL OR provider = ?2) AND (?3 IS NULL OR model = ?3) \
               AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5) \
             ORDER BY created_at LIMIT ?6"
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
        let mut values = [0u64; 5];
        let runs: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM ({ENDED})"))
            .bind(before_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        values[0] = to_u64(runs);
        for (slot, (table, column)) in values[1..].iter_mut().zip(CHILDREN) {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {column} IN ({ENDED})"
            ))
            .bind(before_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
            *slot = to_u64(n);
        }
        Ok(counts(values))
    }

    async fn delete_ended_before(&self, before_ms: i64) -> StoreResult<RetentionCounts> {
        let mut tx = self.writer.begin().await?;
        let mut values = [0u64; 5];
        for (slot, (table, column)) in values[1..].iter_mut().zip(CHILDREN) {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE {column} IN ({ENDED})"))
                .bind(before_ms)
                .execute(&mut *tx)
                .await?;
            *slot = done.rows_affected();
        }
        let done = sqlx::query(&format!("DELETE FROM runs WHERE id IN ({ENDED})"))
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        values[0] = done.rows_affected();
        tx.commit().await?;
        Ok(counts(values))
    }
}
