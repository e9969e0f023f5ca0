//! `WebhookStore` on SQLite. The outbox insert is one statement shared with the run writer,
//! which runs it inside the transaction of the audit event it delivers.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, conflict_or, found, page_binds, to_u64};
use crate::store::webhooks::{DELIVERY_COLUMNS, HOOK_COLUMNS, delivery_from_row, hook_from_row};
use crate::store::{
    Attempt, Delivery, DeliveryFilter, Page, StoreError, StoreResult, WebhookRecord, WebhookStore,
};
use crate::webhook::{DeliveryStatus, WebhookStatus};

/// Queues one event for the webhooks that want it: ?1 event id, ?2 event, ?3 data (JSON text),
/// ?4 now, ?5 one webhook id (a test ping, whatever it subscribes to) or NULL for every active
/// webhook subscribed to ?2 or to `*`.
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, data, status, attempts, next_attempt_at, created_at) \
    SELECT ?1 || ':' || w.id, w.id, ?1, ?2, ?3, 'pending', 0, ?4, ?4 FROM webhooks w \
    WHERE (?5 IS NULL AND w.status = 'active' AND EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = ?2 OR j.value = '*')) \
       OR w.id = ?5";

/// A new envelope id.
pub(super) fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

fn events_json(hook: &WebhookRecord) -> String {
    serde_json::Value::from(hook.events.clone()).to_string()
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, h: &WebhookRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&h.id)
        .bind(&h.name)
        .bind(&h.url)
        .bind(events_json(h))
        .bind(&h.encrypted_secret)
        .bind(&h.secret_prefix)
        .bind(&h.previous_encrypted_secret)
        .bind(h.previous_secret_until_ms)
        .bind(h.status.as_str())
        .bind(h.created_at_ms)
        .bind(h.updated_at_ms)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "webhook id"))?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        let row = sqlx::query(&format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(hook_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn list_webhooks(
        &self,
        status: Option<WebhookStatus>,
        event: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<WebhookRecord>, u64)> {
        let filter = "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(events) j WHERE j.value = ?2 OR j.value = '*'))";
        let (limit, offset) = page_binds(page);
        let status = status.map(WebhookStatus::as_str);
        let rows = sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
        ))
        .bind(status)
        .bind(event)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM webhooks WHERE {filter}"))
            .bind(status)
            .bind(event)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let hooks = rows.iter().map(hook_from_row).collect::<StoreResult<_>>()?;
        Ok((hooks, to_u64(total)))
    }

    async fn update_webhook(&self, h: &WebhookRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE webhooks SET name = ?, url = ?, events = ?, encrypted_secret = ?, secret_prefix = ?, previous_encrypted_secret = ?, previous_secret_until = ?, status = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&h.name)
        .bind(&h.url)
        .bind(events_json(h))
        .bind(&h.encrypted_secret)
        .bind(&h.secret_prefix)
        .bind(&h.previous_encrypted_secret)
        .bind(h.previous_secret_until_ms)
        .bind(h.status.as_str())
        .bind(h.updated_at_ms)
        .bind(&h.id)
        .execute(&self.writer)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        found(done.rows_affected())?;
        sqlx::query("UPDATE webhook_deliveries SET status = 'dead', last_error = 'webhook deleted' WHERE webhook_id = ? AND status = 'pending'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enqueue(
        &self,
        event: &str,
        data: &serde_json::Value,
        only: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(ENQUEUE)
            .bind(event_id())
            .bind(event)
            .bind(data.to_string())
            .bind(now_ms)
            .bind(only)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn lease_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        // A read first: the UPDATE takes SQLite's write lock even when nothing is due, and the
        // worker polls several times a second beside the run writer.
        let due = sqlx::query(
            "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET next_attempt_at = ?1 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3) RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, id: &str, attempt: &Attempt) -> StoreResult<()> {
        let query = match attempt {
            Attempt::Delivered { status, at_ms } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = ?1, last_error = NULL, delivered_at = ?2 WHERE id = ?3",
            )
            .bind(i64::from(*status))
            .bind(*at_ms),
            Attempt::Failed {
                status,
                error,
                retry_at_ms,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET status = CASE WHEN ?1 IS NULL THEN 'dead' ELSE 'pending' END, attempts = attempts + 1, next_attempt_at = COALESCE(?1, next_attempt_at), last_status = ?2, last_error = ?3 WHERE id = ?4",
            )
            .bind(*retry_at_ms)
            .bind(status.map(i64::from))
            .bind(error.clone()),
        };
        let done = query.bind(id).execute(&self.writer).await?;
        found(done.rows_affected())
    }

    async fn deliveries(
        &self,
        webhook_id: &str,
        f: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let filter =
            "webhook_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR event = ?3)";
        let (limit, offset) = page_binds(page);
        let status = f.status.map(DeliveryStatus::as_str);
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?4 OFFSET ?5"
        ))
        .bind(webhook_id)
        .bind(status)
        .bind(&f.event)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE {filter}"
        ))
        .bind(webhook_id)
        .bind(status)
        .bind(&f.event)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let items = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, to_u64(total)))
    }
}
