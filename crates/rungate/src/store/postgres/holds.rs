//! `HoldStore` on PostgreSQL: the shared books. Admission is one transaction that locks the
//! run's row, reads its committed totals and the counters of every gateway's holds from it (the
//! counters live on the row so that one locked read is the whole budget), reads the rate
//! windows in a second statement — after the lock, so it sees what the previous lock holder
//! committed — judges with `budget::judge` and `policy::judge_rate`, and on admission inserts
//! the hold and the window entries and bumps the counters. Five round trips, no retries: the
//! lock queues concurrent calls of one run instead of letting them collide.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::{PgStore, audit};
use crate::budget::{self, Snapshot};
use crate::money::UsdNanos;
use crate::policy::{self, RATE_WINDOW_MS};
use crate::run::{JoinRefusal, RunId, RunStatus};
use crate::store::sql::{to_i64, to_u64};
use crate::store::{
    ExpiredHolds, HoldStore, RateCheck, Reservation, Reserved, StoreError, StoreResult,
};

/// Judges the call against each rate window in `checks`; the first that refuses wins. Agent
/// windows span runs, so they are serialised by an advisory lock on the key (taken after the
/// run's row lock, the order every admission follows). The windows are counted in 100 ms
/// buckets, and a bucket leaves the window only once all of it is older than a minute: a
/// window may refuse up to 100 ms early, never admit more than its limit.
async fn check_rates(
    conn: &mut PgConnection,
    checks: &[RateCheck<'_>],
    now_ms: i64,
) -> StoreResult<Option<Reserved>> {
    if checks.is_empty() {
        return Ok(None);
    }
    for check in checks.iter().filter(|c| c.scope != "run") {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&check.key)
            .execute(&mut *conn)
            .await?;
    }
    let keys: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
    let rows = sqlx::query(
        "SELECT window_key, CAST(SUM(calls) AS BIGINT), CAST(SUM(tokens) AS BIGINT), MIN(first_at) FROM rate_buckets \
         WHERE window_key = ANY($1) AND bucket >= $2 GROUP BY window_key",
    )
    .bind(&keys)
    .bind(oldest_bucket(now_ms))
    .fetch_all(&mut *conn)
    .await?;
    for check in checks {
        let mut window = (0, 0, now_ms);
        for row in &rows {
            if row.try_get::<String, _>(0)? == check.key {
                window = (
                    to_u64(row.try_get(1)?),
                    to_u64(row.try_get(2)?),
                    row.try_get(3)?,
                );
            }
        }
        let (calls, used, oldest) = window;
        if let Err(refusal) =
            policy::judge_rate(check.limits, calls, used, oldest, now_ms, check.tokens)
        {
            return Ok(Some(Reserved::RateLimited {
                scope: check.scope,
                refusal,
            }));
        }
    }
    Ok(None)
}

const BUCKET_MS: i64 = 100;

/// The oldest bucket still (partly) inside the window at `now_ms`.
fn oldest_bucket(now_ms: i64) -> i64 {
    (now_ms - RATE_WINDOW_MS).div_euclid(BUCKET_MS)
}

#[async_trait]
impl HoldStore for PgStore {
    async fn reserve(&self, r: &Reservation<'_>) -> StoreResult<Reserved> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT status, ended_reason, spend_nanos, input_tokens + output_tokens AS tokens, steps_count, budget_limit_nanos, reserved_nanos, reserved_tokens, in_flight FROM runs WHERE id = $1 FOR UPDATE",
        )
        .bind(&r.run_id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let status: String = row.try_get("status")?;
        let status = RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?;
        if status != RunStatus::Running {
            let reason: Option<String> = row.try_get("ended_reason")?;
            return Ok(Reserved::Closed(JoinRefusal::Closed {
                status,
                force_stopped: reason.as_deref() == Some(crate::run::FORCE_STOPPED),
            }));
        }
        if let Some(limited) = check_rates(&mut tx, r.rates, r.now_ms).await? {
            return Ok(limited);
        }
        let books = Snapshot {
            spend: UsdNanos(row.try_get("spend_nanos")?),
            tokens: to_u64(row.try_get("tokens")?),
            steps: to_u64(row.try_get("steps_count")?),
            reserved: UsdNanos(row.try_get("reserved_nanos")?),
            reserved_tokens: to_u64(row.try_get("reserved_tokens")?),
            in_flight: to_u64(row.try_get("in_flight")?),
        };
        let mut caps = r.caps;
        if let Some(raised) = row.try_get::<Option<i64>, _>("budget_limit_nanos")? {
            caps.usd = Some(UsdNanos(raised));
        }
        let admission = match budget::judge(&books, &caps, &r.call) {
            Ok(admission) => admission,
            Err(refusal) => return Ok(Reserved::Refused(refusal)),
        };
        let keys: Vec<&str> = r.rates.iter().map(|c| c.key.as_str()).collect();
        let tokens: Vec<i64> = r.rates.iter().map(|c| to_i64(c.tokens)).collect();
        sqlx::query(
            "WITH hold AS (INSERT INTO run_holds (run_id, hold_id, gateway_id, amount_nanos, tokens, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)), \
                  rated AS (INSERT INTO rate_buckets (window_key, bucket, calls, tokens, first_at) SELECT k, $10, 1, t, $6 FROM UNNEST($8::text[], $9::bigint[]) AS w(k, t) \
                      ON CONFLICT (window_key, bucket) DO UPDATE SET calls = rate_buckets.calls + 1, tokens = rate_buckets.tokens + EXCLUDED.tokens, first_at = LEAST(rate_buckets.first_at, EXCLUDED.first_at)) \
             UPDATE runs SET reserved_nanos = reserved_nanos + $4, reserved_tokens = reserved_tokens + $5, in_flight = in_flight + 1 WHERE id = $1",
        )
        .bind(&r.run_id.0)
        .bind(r.hold_id)
        .bind(r.gateway_id)
        .bind(admission.amount.0)
        .bind(to_i64(admission.tokens))
        .bind(r.now_ms)
        .bind(r.expires_at_ms)
        .bind(keys)
        .bind(tokens)
        .bind(r.now_ms.div_euclid(BUCKET_MS))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reserved::Admitted(admission))
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
        sqlx::query("DELETE FROM rate_buckets WHERE bucket < $1")
            .bind(oldest_bucket(now_ms))
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
