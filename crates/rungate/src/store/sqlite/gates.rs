//! `GateStore` on SQLite: transitions go through the run writer (with their audit events),
//! reads through the pool.

use async_trait::async_trait;

use super::SqliteStore;
use super::gate_writes::{GateChange, GateOutcome};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId};
use crate::store::gates::undecidable;
use crate::store::{GateReads, GateStore, StoreError, StoreResult};

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

crate::store::sql::gates::gate_reads!(SqliteStore);

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
}
