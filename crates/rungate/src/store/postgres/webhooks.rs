//! `WebhookStore` on PostgreSQL. The outbox insert is one statement shared with the audit
//! append, which runs it inside the transaction of the audit event it delivers. Unlike SQLite,
//! several gateways poll the same outbox, so `lease_due` picks its rows `FOR UPDATE SKIP
//! LOCKED` inside the leasing UPDATE: each due delivery goes to exactly one gateway, and a
//! gateway never waits on rows another is leasing (nor reads first: there is no single writer
//! lock to spare).

use async_trait::async_trait;
use sqlx::Row;

use crate::store::sql::{conflict_or, found, page_binds, to_u64};
use crate::store::webhooks::{DELIVERY_COLUMNS, HOOK_COLUMNS, delivery_from_row, hook_from_row};
use crate::store::{
    Attempt, Delivery, DeliveryFilter, Page, StoreError, StoreResult, WebhookRecord, WebhookStore,
};
use crate::webhook::{DeliveryStatus, WebhookStatus};

use super::PgStore;

/// Queues one event for the webhooks that want it: $1 event id, $2 event, $3 data (JSON text),
/// $4 now, $5 one webhook id (a test ping, whatever it subscribes to) or NULL for every active
/// webhook subscribed to $2 or to `*`.
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, data, status, attempts, next_attempt_at, created_at) \
    SELECT $1::text || ':' || w.id, w.id, $1::text, $2::text, $3::text, 'pending', 0, $4::bigint, $4::bigint FROM webhooks w \
    WHERE ($5::text IS NULL AND w.status = 'active' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(w.events::jsonb) j(v) WHERE j.v = $2::text OR j.v = '*')) \
       OR w.id = $5::text";

/// A new envelope id.
pub(super) fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

fn events_json(hook: &WebhookRecord) -> String {
    serde_json::Value::from(hook.events.clone()).to_string()
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, h: &WebhookRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "webhook id"))?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        let row = sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
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
        let filter = "($1::text IS NULL OR status = $1::text) AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(events::jsonb) j(v) WHERE j.v = $2::text OR j.v = '*'))";
        let (limit, offset) = page_binds(page);
        let status = status.map(WebhookStatus::as_str);
        let rows = sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
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
            "UPDATE webhooks SET name = $1, url = $2, events = $3, encrypted_secret = $4, secret_prefix = $5, previous_encrypted_secret = $6, previous_secret_until = $7, status = $8, updated_at = $9 WHERE id = $10",
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
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        found(done.rows_affected())?;
        sqlx::query("UPDATE webhook_deliveries SET status = 'dead', last_error = 'webhook deleted' WHERE webhook_id = $1 AND status = 'pending'")
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
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn lease_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        // SKIP LOCKED: rows another gateway is leasing right now are left to it, and once its
        // lease commits they are no longer due (the row lock re-checks the WHERE clause).
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, id: &str, attempt: &Attempt) -> StoreResult<()> {
        let query = match attempt {
            Attempt::Delivered { status, at_ms } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = $1, last_error = NULL, delivered_at = $2 WHERE id = $3",
            )
            .bind(i64::from(*status))
            .bind(*at_ms),
            Attempt::Failed {
                status,
                error,
                retry_at_ms,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET status = CASE WHEN $1::bigint IS NULL THEN 'dead' ELSE 'pending' END, attempts = attempts + 1, next_attempt_at = COALESCE($1::bigint, next_attempt_at), last_status = $2::bigint, last_error = $3 WHERE id = $4",
            )
            .bind(*retry_at_ms)
            .bind(status.map(i64::from))
            .bind(error.clone()),
        };
        let done = query.bind(id).execute(&self.pool).await?;
        found(done.rows_affected())
    }

    async fn deliveries(
        &self,
        webhook_id: &str,
        f: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let filter = "webhook_id = $1 AND ($2::text IS NULL OR status = $2::text) AND ($3::text IS NULL OR event = $3::text)";
        let (limit, offset) = page_binds(page);
        let status = f.status.map(DeliveryStatus::as_str);
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
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
