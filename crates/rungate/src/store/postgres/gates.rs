//! `GateStore` on PostgreSQL. Each transition is one transaction that first locks the gate's
//! run (the order every run change follows, see `audit`), then makes its conditional change —
//! "still pending", "approved and unused" — so two gateways racing on one gate, or fifty
//! retries spread over three gateways, cannot both win.

use async_trait::async_trait;
use sqlx::Row;

use super::{PgStore, audit};
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus};
use crate::store::gates::{GATE_COLUMNS, gate_from_row, undecidable};
use crate::store::{GateReads, GateStore, StoreResult};

impl PgStore {
    async fn gates_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Gate>> {
        sqlx::query(&format!(
            "SELECT {GATE_COLUMNS} FROM gates WHERE id = ANY($1) ORDER BY created_at, id"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(gate_from_row)
        .collect()
    }
}

crate::store::sql::gates::gate_reads!(PgStore);

#[async_trait]
impl GateStore for PgStore {
    async fn open_gates(
        &self,
        gates: Vec<Gate>,
        events: Vec<AuditEvent>,
        now_ms: i64,
    ) -> StoreResult<Vec<Gate>> {
        let Some(first) = gates.first() else {
            return Ok(Vec::new());
        };
        let mut tx = self.pool.begin().await?;
        audit::lock_run(&mut tx, &first.run_id).await?;
        let existing: Vec<String> = sqlx::query(
            "SELECT id FROM gates WHERE run_id = $1 AND fingerprint = $2 AND status = 'pending' AND expires_at > $3 ORDER BY created_at, id",
        )
        .bind(&first.run_id)
        .bind(&first.fingerprint)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        if !existing.is_empty() {
            tx.commit().await?;
            return self.gates_by_ids(&existing).await;
        }
        for g in &gates {
            let held = g.held.as_ref();
            sqlx::query(
                "INSERT INTO gates (id, run_id, agent_id, trigger, rule, tool, args, approver_channel, fingerprint, status, created_at, expires_at, held_status, held_content_type, held_body, held_step_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13, $14, $15)",
            )
            .bind(&g.id.0)
            .bind(&g.run_id)
            .bind(&g.agent_id)
            .bind(g.trigger.as_str())
            .bind(&g.rule)
            .bind(&g.tool)
            .bind(g.args.to_string())
            .bind(&g.approver_channel)
            .bind(&g.fingerprint)
            .bind(g.created_at_ms)
            .bind(g.expires_at_ms)
            .bind(held.map(|h| i64::from(h.status)))
            .bind(held.map(|h| h.content_type.as_str()))
            .bind(held.map(|h| h.body.as_slice()))
            .bind(held.map(|h| h.step_id.as_str()))
            .execute(&mut *tx)
            .await?;
        }
        audit::append(&mut tx, &first.run_id, &events).await?;
        tx.commit().await?;
        let opened: Vec<String> = gates.iter().map(|g| g.id.0.clone()).collect();
        self.gates_by_ids(&opened).await
    }

    async fn decide_gate(
        &self,
        id: &GateId,
        decision: &Decision,
        event: AuditEvent,
    ) -> StoreResult<Gate> {
        let gate = self.get_gate(id).await?;
        let mut tx = self.pool.begin().await?;
        audit::lock_run(&mut tx, &gate.run_id).await?;
        let changed = sqlx::query(
            "UPDATE gates SET status = $1, decided_at = $2, decided_by = $3, reason = $4 WHERE id = $5 AND status = 'pending' AND expires_at > $2",
        )
        .bind(decision.status.as_str())
        .bind(decision.at_ms)
        .bind(&decision.actor)
        .bind(&decision.reason)
        .bind(&id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !changed {
            tx.rollback().await?;
            return Err(undecidable(&self.get_gate(id).await?, decision.at_ms));
        }
        if let Some(limit) = decision.raise_limit {
            sqlx::query("UPDATE runs SET budget_limit_nanos = $1 WHERE id = $2")
                .bind(limit.0)
                .bind(&gate.run_id)
                .execute(&mut *tx)
                .await?;
        }
        audit::append(&mut tx, &gate.run_id, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        self.get_gate(id).await
    }

    async fn consume_gates(
        &self,
        run_id: &str,
        ids: &[GateId],
        event: AuditEvent,
        now_ms: i64,
    ) -> StoreResult<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let ids: Vec<&str> = ids.iter().map(|id| id.0.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        audit::lock_run(&mut tx, run_id).await?;
        let used = sqlx::query(
            "UPDATE gates SET consumed_at = $1 WHERE id = ANY($2) AND run_id = $3 AND status = $4 AND consumed_at IS NULL",
        )
        .bind(now_ms)
        .bind(&ids)
        .bind(run_id)
        .bind(GateStatus::Approved.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used != ids.len() as u64 {
            // Some gate is not approved or already used: nothing is consumed.
            tx.rollback().await?;
            return Ok(false);
        }
        audit::append(&mut tx, run_id, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn expire_gates(&self, now_ms: i64) -> StoreResult<Vec<Gate>> {
        let overdue = sqlx::query(
            "SELECT id, run_id, tool, rule FROM gates WHERE status = 'pending' AND expires_at <= $1 ORDER BY created_at LIMIT 500",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = Vec::new();
        for row in &overdue {
            let (id, run_id, tool, rule): (String, String, String, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let mut tx = self.pool.begin().await?;
            audit::lock_run(&mut tx, &run_id).await?;
            // Another gateway's sweeper, or an approver, may have got there first.
            let changed = sqlx::query(
                "UPDATE gates SET status = 'expired', decided_at = $1, decided_by = 'system:expiry' WHERE id = $2 AND status = 'pending'",
            )
            .bind(now_ms)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if changed {
                let event = AuditEvent {
                    kind: "approval.expired",
                    actor: "system:expiry".into(),
                    data: serde_json::json!({"gate_id": id, "tool": tool, "rule": rule}),
                    at_ms: now_ms,
                };
                audit::append(&mut tx, &run_id, std::slice::from_ref(&event)).await?;
                expired.push(id);
            }
            tx.commit().await?;
        }
        self.gates_by_ids(&expired).await
    }
}
