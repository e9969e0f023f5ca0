//! `HoldStore` on PostgreSQL: the shared books. Admissions go through the group writer
//! (`writer`), which judges them under the run's row lock against the committed totals and the
//! counters of every gateway's holds (kept on the run's row, so one locked read is the whole
//! budget) with `budget::judge` and `policy::judge_rate`. Here: releases, renewals and the
//! sweep that frees the holds of gateways that stopped renewing them.

use async_trait::async_trait;
use sqlx::Row;

use super::{PgStore, audit};
use crate::run::{JoinRefusal, RunId, RunStatus};
use crate::store::sql::{to_i64, to_u64};
use crate::store::{ExpiredHolds, HoldStore, Reservation, Reserved, StoreError, StoreResult};

/// Why a run (its `status` and `ended_reason` columns) accepts no more calls, if it does not.
fn closed(row: &sqlx::postgres::PgRow) -> StoreResult<Option<JoinRefusal>> {
    let status: String = row.try_get("status")?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?;
    if status == RunStatus::Running {
        return Ok(None);
    }
    let reason: Option<String> = row.try_get("ended_reason")?;
    Ok(Some(JoinRefusal::Closed {
        status,
        force_stopped: reason.as_deref() == Some(crate::run::FORCE_STOPPED),
    }))
}

#[async_trait]
impl HoldStore for PgStore {
    async fn reserve(&self, reservation: Reservation) -> StoreResult<Reserved> {
        self.writer.reserve(reservation).await
    }

    async fn refusal(&self, run_id: &RunId) -> StoreResult<Option<JoinRefusal>> {
        let row = sqlx::query("SELECT status, ended_reason FROM runs WHERE id = $1")
            .bind(&run_id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        closed(&row)
    }

    async fn record_proposals(&self, run_id: &RunId, tool: &str, count: u64) -> StoreResult<u64> {
        let count = to_i64(count);
        let before: i64 = sqlx::query(
            "INSERT INTO run_tool_proposals (run_id, tool, proposals) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, tool) DO UPDATE SET proposals = run_tool_proposals.proposals + EXCLUDED.proposals \
             RETURNING proposals - $3",
        )
        .bind(&run_id.0)
        .bind(tool)
        .bind(count)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(to_u64(before))
    }

    async fn proposals(&self, run_id: &RunId, tool: &str) -> StoreResult<u64> {
        let row =
            sqlx::query("SELECT proposals FROM run_tool_proposals WHERE run_id = $1 AND tool = $2")
                .bind(&run_id.0)
                .bind(tool)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(row) => to_u64(row.try_get(0)?),
            None => 0,
        })
    }

    async fn release(&self, run_id: &RunId, hold_id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        match audit::lock_run(&mut tx, &run_id.0).await {
            Err(StoreError::NotFound) => return Ok(()),
            other => other?,
        };
        sqlx::query(
            "WITH hold AS (DELETE FROM run_holds WHERE run_id = $1 AND hold_id = $2 RETURNING amount_nanos, tokens) \
             UPDATE runs SET reserved_nanos = reserved_nanos - hold.amount_nanos, reserved_tokens = reserved_tokens - hold.tokens, in_flight = in_flight - 1 \
             FROM hold WHERE runs.id = $1",
        )
        .bind(&run_id.0)
        .bind(hold_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn renew(&self, gateway_id: &str, now_ms: i64, expires_at_ms: i64) -> StoreResult<u64> {
        // Only holds still alive: an expired one is the sweeper's, and touching it could
        // deadlock with the sweeper's run-then-holds order.
        let renewed = sqlx::query(
            "UPDATE run_holds SET expires_at = $1 WHERE gateway_id = $2 AND expires_at > $3",
        )
        .bind(expires_at_ms)
        .bind(gateway_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed)
    }

    async fn expire_holds(&self, now_ms: i64) -> StoreResult<Vec<ExpiredHolds>> {
        sqlx::query("DELETE FROM agent_spend_minutes WHERE minute < $1")
            .bind(super::writer::oldest_minute(now_ms))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM rate_buckets WHERE bucket < $1")
            .bind(super::writer::oldest_bucket(now_ms))
            .execute(&self.pool)
            .await?;
        let runs: Vec<String> =
            sqlx::query("SELECT DISTINCT run_id FROM run_holds WHERE expires_at <= $1 LIMIT 500")
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
        let mut released = Vec::new();
        for run_id in runs {
            let mut tx = self.pool.begin().await?;
            audit::lock_run(&mut tx, &run_id).await?;
            let row = sqlx::query(
                "WITH gone AS (DELETE FROM run_holds WHERE run_id = $1 AND expires_at <= $2 RETURNING amount_nanos, tokens, gateway_id), \
                      total AS (SELECT COUNT(*) AS holds, CAST(COALESCE(SUM(amount_nanos), 0) AS BIGINT) AS amount, CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens, \
                                       COALESCE(array_agg(DISTINCT gateway_id), '{}') AS gateways FROM gone) \
                 UPDATE runs SET reserved_nanos = reserved_nanos - total.amount, reserved_tokens = reserved_tokens - total.tokens, in_flight = in_flight - total.holds \
                 FROM total WHERE runs.id = $1 RETURNING total.holds, total.amount, total.gateways",
            )
            .bind(&run_id)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let holds = to_u64(row.try_get(0)?);
            let amount: i64 = row.try_get(1)?;
            let gateways: Vec<String> = row.try_get(2)?;
            if holds > 0 {
                let event = crate::audit::AuditEvent {
                    kind: "budget.holds_expired",
                    actor: "system:holds".into(),
                    data: serde_json::json!({"holds": holds, "released_nanos": amount, "gateways": gateways}),
                    at_ms: now_ms,
                };
                audit::append(&mut tx, &run_id, std::slice::from_ref(&event)).await?;
                released.push(ExpiredHolds {
                    run_id: RunId(run_id),
                    holds,
                    amount_nanos: amount,
                });
            }
            tx.commit().await?;
        }
        Ok(released)
    }
}
