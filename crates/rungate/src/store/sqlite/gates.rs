//! `GateStore` on SQLite: transitions go through the run writer (with their audit events),
//! reads through the pool.

use async_trait::async_trait;
use sqlx::Row;

use super::gate_writes::{GateChange, GateOutcome};
use super::{SqliteStore, page_binds, to_u64};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus};
use crate::store::gates::{GATE_COLUMNS, gate_from_row, undecidable};
use crate::store::{GateFilter, GateStore, Page, StoreError, StoreResult};

impl SqliteStore {
    async fn gates_by_ids(&self, ids: &[GateId]) -> StoreResult<Vec<Gate>> {
        let mut gates = Vec::with_capacity(ids.len());
        for id in ids {
            gates.push(self.get_gate(id).await?);
        }
        Ok(gates)
    }
}

fn ids(outcome: GateOutcome) -> StoreResult<Vec<GateId>> {
    match outcome {
        GateOutcome::Ids(ids) => Ok(ids),
        GateOutcome::Changed(_) => Err(StoreError::Engine("gate writer answered a flag".into())),
    }
}

fn changed(outcome: GateOutcome) -> StoreResult<bool> {
    match outcome {
        GateOutcome::Changed(changed) => Ok(changed),
        GateOutcome::Ids(_) => Err(StoreError::Engine("gate writer answered ids".into())),
    }
}

#[async_trait]
impl GateStore for SqliteStore {
    async fn open_gates(
        &self,
        gates: Vec<Gate>,
        events: Vec<AuditEvent>,
        now_ms: i64,
    ) -> StoreResult<Vec<Gate>> {
        let change = GateChange::Open {
            gates,
            events,
            now_ms,
        };
        let opened = ids(self.runs.change_gates(change).await?)?;
        self.gates_by_ids(&opened).await
    }

    async fn decide_gate(
        &self,
        id: &GateId,
        decision: &Decision,
        event: AuditEvent,
    ) -> StoreResult<Gate> {
        let change = GateChange::Decide {
            id: id.clone(),
            decision: decision.clone(),
            event,
        };
        if !changed(self.runs.change_gates(change).await?)? {
            return Err(undecidable(&self.get_gate(id).await?, decision.at_ms));
        }
        self.get_gate(id).await
    }

    async fn consume_gates(
        &self,
        run_id: &str,
        ids: &[GateId],
        event: AuditEvent,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let change = GateChange::Consume {
            run_id: run_id.to_owned(),
            ids: ids.to_vec(),
            event,
            now_ms,
        };
        changed(self.runs.change_gates(change).await?)
    }

    async fn expire_gates(&self, now_ms: i64) -> StoreResult<Vec<Gate>> {
        let expired = ids(self
            .runs
            .change_gates(GateChange::Expire { now_ms })
            .await?)?;
        self.gates_by_ids(&expired).await
    }

    async fn get_gate(&self, id: &GateId) -> StoreResult<Gate> {
        let sql = format!("SELECT {GATE_COLUMNS} FROM gates WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(gate_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn run_gates(&self, run_id: &str) -> StoreResult<Vec<Gate>> {
        let sql =
            format!("SELECT {GATE_COLUMNS} FROM gates WHERE run_id = ? ORDER BY created_at, id");
        let rows = sqlx::query(&sql).bind(run_id).fetch_all(&self.pool).await?;
        rows.iter().map(gate_from_row).collect()
    }

    async fn list_gates(&self, f: &GateFilter, page: Page) -> StoreResult<(Vec<Gate>, u64)> {
        let filter = "(?1 IS NULL OR agent_id = ?1) AND (?2 IS NULL OR run_id = ?2) AND (?3 IS NULL OR status = ?3)";
        let (limit, offset) = page_binds(page);
        let status = f.status.map(GateStatus::as_str);
        let sql = format!(
            "SELECT {GATE_COLUMNS} FROM gates WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?4 OFFSET ?5"
        );
        let rows = sqlx::query(&sql)
            .bind(&f.agent_id)
            .bind(&f.run_id)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM gates WHERE {filter}"))
            .bind(&f.agent_id)
            .bind(&f.run_id)
            .bind(status)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let gates = rows.iter().map(gate_from_row).collect::<StoreResult<_>>()?;
        Ok((gates, to_u64(total)))
    }
}
