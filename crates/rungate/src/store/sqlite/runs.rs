//! `RunStore` on SQLite: changes go through the run writer thread (`run_writer`); reads are the
//! shared `store::sql::runs`.

use async_trait::async_trait;

use super::SqliteStore;
use crate::audit::AuditEvent;
use crate::run::{Run, RunId, RunStatus, RunTotals};
use crate::store::{RunReads, RunStore, StepRecord, StoreResult};

crate::store::sql::runs::run_reads!(SqliteStore);

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, run: &Run, event: AuditEvent) -> StoreResult<()> {
        self.runs.create_run(run, event).await
    }

    async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals> {
        self.runs.record_step(record).await
    }

    async fn close_run(
        &self,
        id: &RunId,
        status: RunStatus,
        reason: &str,
        metadata: Option<&serde_json::Value>,
        event: AuditEvent,
    ) -> StoreResult<(Run, bool)> {
        let changed = self
            .runs
            .close_run(id, status, reason, metadata, event)
            .await?;
        Ok((self.get_run(id).await?, changed))
    }

    async fn append_events(&self, id: &RunId, events: Vec<AuditEvent>) -> StoreResult<()> {
        self.runs.append_events(id, events).await
    }
}
