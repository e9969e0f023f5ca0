//! `RunReads` for both SQL backends, written once (portable SQL, as `sql::agents`): runs,
//! their steps, ledger and audit chain as the admin API and the proxy read them. The writes
//! differ by backend (SQLite's writer thread, PostgreSQL's row locks and group writer) and stay
//! in each backend's `runs.rs`.

/// Implements `RunReads` for `$store` (with `reads()`).
macro_rules! run_reads {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::audit::{AuditHead, ChainedEvent};
            use $crate::budget::LedgerEntry;
            use $crate::money::UsdNanos;
            use $crate::run::{Run, RunId, RunStatus, Step};
            use $crate::store::runs::{
                AGENT_TOTALS, AUDIT_COLUMNS, LEDGER_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, agent_totals_from_row,
                event_from_row, ledger_from_row, run_from_row, step_from_row,
            };
            use $crate::store::sql::{page_binds, to_u64};
            use $crate::store::{AgentTotals, Page, RunFilter, RunReads, StoreError, StoreResult};

            #[async_trait]
            impl RunReads for $store {
                async fn get_run(&self, id: &RunId) -> StoreResult<Run> {
                    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
                        .bind(&id.0)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref()
                        .map(run_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }

                async fn list_runs(&self, f: &RunFilter, page: Page) -> StoreResult<(Vec<Run>, u64)> {
                    let filter = "(CAST($1 AS TEXT) IS NULL OR agent_id = $1) AND (CAST($2 AS TEXT) IS NULL OR status = $2) AND (CAST($3 AS BIGINT) IS NULL OR started_at >= $3) AND (CAST($4 AS BIGINT) IS NULL OR started_at < $4) AND (CAST($5 AS BIGINT) IS NULL OR spend_nanos >= $5) AND (CAST($6 AS BIGINT) IS NULL OR spend_nanos <= $6)";
                    let column = match f.sort.as_deref() {
                        Some("spend") | Some("cost") => "spend_nanos",
                        Some("last_activity_at") => "last_activity_at",
                        _ => "started_at",
                    };
                    let order = if f.ascending { "ASC" } else { "DESC" };
                    let (limit, offset) = page_binds(page);
                    let status = f.status.map(RunStatus::as_str);
                    let (min_spend, max_spend) = (f.min_spend.map(|n| n.0), f.max_spend.map(|n| n.0));
                    let rows = sqlx::query(&format!(
                        "SELECT {RUN_COLUMNS}, COUNT(*) OVER () AS total FROM runs WHERE {filter} ORDER BY {column} {order}, id {order} LIMIT $7 OFFSET $8"
                    ))
                    .bind(&f.agent_id)
                    .bind(status)
                    .bind(f.since_ms)
                    .bind(f.until_ms)
                    .bind(min_spend)
                    .bind(max_spend)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.reads())
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
                                .bind(min_spend)
                                .bind(max_spend)
                                .fetch_one(self.reads())
                                .await?
                                .try_get(0)?,
                        ),
                    };
                    let runs = rows.iter().map(run_from_row).collect::<StoreResult<_>>()?;
                    Ok((runs, total))
                }

                async fn tool_steps(&self, id: &RunId, tool: &str) -> StoreResult<u64> {
                    let count: i64 = sqlx::query(
                        "SELECT COUNT(*) FROM steps WHERE run_id = $1 AND kind = 'tool_call' AND model = $2",
                    )
                    .bind(&id.0)
                    .bind(tool)
                    .fetch_one(self.reads())
                    .await?
                    .try_get(0)?;
                    Ok(to_u64(count))
                }

                async fn idle_runs(&self, now_ms: i64, default_idle_ms: i64) -> StoreResult<Vec<RunId>> {
                    let rows = sqlx::query(
                        "SELECT id FROM runs WHERE status = 'running' AND last_activity_at + COALESCE(idle_timeout_ms, $1) < $2 LIMIT 500",
                    )
                    .bind(default_idle_ms)
                    .bind(now_ms)
                    .fetch_all(self.reads())
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
                    .fetch_all(self.reads())
                    .await?;
                    let total: i64 = sqlx::query("SELECT COUNT(*) FROM steps WHERE run_id = $1")
                        .bind(&id.0)
                        .fetch_one(self.reads())
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
                    .fetch_all(self.reads())
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
                    .fetch_all(self.reads())
                    .await?
                    .iter()
                    .map(event_from_row)
                    .collect()
                }

                async fn audit_head(&self, id: &RunId) -> StoreResult<AuditHead> {
                    let row = sqlx::query("SELECT audit_seq, audit_head FROM runs WHERE id = $1")
                        .bind(&id.0)
                        .fetch_optional(self.reads())
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    Ok(AuditHead {
                        seq: row.try_get("audit_seq")?,
                        hash: row.try_get("audit_head")?,
                    })
                }

                async fn agent_totals(&self) -> StoreResult<Vec<AgentTotals>> {
                    sqlx::query(AGENT_TOTALS)
                        .fetch_all(self.reads())
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
                    .fetch_one(self.reads())
                    .await?
                    .try_get(0)?;
                    Ok(UsdNanos(spent.unwrap_or(0)))
                }
            }
        };
    };
}

pub(in crate::store) use run_reads;
