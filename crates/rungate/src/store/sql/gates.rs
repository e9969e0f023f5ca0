//! `GateReads` for both SQL backends, written once (portable SQL, as `sql::agents`). The
//! transitions differ by backend (SQLite's writer thread, PostgreSQL's run row locks) and stay
//! in each backend's `gates.rs`.

/// Implements `GateReads` for `$store` (with `reads()`).
macro_rules! gate_reads {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::gate::{Gate, GateId, GateStatus};
            use $crate::store::gates::{GATE_COLUMNS, gate_from_row};
            use $crate::store::sql::{page_binds, to_u64};
            use $crate::store::{GateFilter, GateReads, Page, StoreError, StoreResult};

            #[async_trait]
            impl GateReads for $store {
                async fn get_gate(&self, id: &GateId) -> StoreResult<Gate> {
                    let row = sqlx::query(&format!("SELECT {GATE_COLUMNS} FROM gates WHERE id = $1"))
                        .bind(&id.0)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref()
                        .map(gate_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }

                async fn run_gates(&self, run_id: &str) -> StoreResult<Vec<Gate>> {
                    sqlx::query(&format!(
                        "SELECT {GATE_COLUMNS} FROM gates WHERE run_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(run_id)
                    .fetch_all(self.reads())
                    .await?
                    .iter()
                    .map(gate_from_row)
                    .collect()
                }

                async fn list_gates(&self, f: &GateFilter, page: Page) -> StoreResult<(Vec<Gate>, u64)> {
                    let filter = "(CAST($1 AS TEXT) IS NULL OR agent_id = $1) AND (CAST($2 AS TEXT) IS NULL OR run_id = $2) AND (CAST($3 AS TEXT) IS NULL OR status = $3)";
                    let (limit, offset) = page_binds(page);
                    let status = f.status.map(GateStatus::as_str);
                    let rows = sqlx::query(&format!(
                        "SELECT {GATE_COLUMNS} FROM gates WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
                    ))
                    .bind(&f.agent_id)
                    .bind(&f.run_id)
                    .bind(status)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.reads())
                    .await?;
                    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM gates WHERE {filter}"))
                        .bind(&f.agent_id)
                        .bind(&f.run_id)
                        .bind(status)
                        .fetch_one(self.reads())
                        .await?
                        .try_get(0)?;
                    let gates = rows.iter().map(gate_from_row).collect::<StoreResult<_>>()?;
                    Ok((gates, to_u64(total)))
                }
            }
        };
    };
}

pub(in crate::store) use gate_reads;
