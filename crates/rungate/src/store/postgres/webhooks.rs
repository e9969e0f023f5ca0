//! `WebhookStore` on PostgreSQL: the shared implementation (`store::sql::webhooks`) with
//! PostgreSQL's JSON test and outbox insert (run by the audit append inside the transaction of
//! the event it delivers). Several gateways poll the same outbox, so `lease_due_rows` picks its
//! rows `FOR UPDATE SKIP LOCKED` inside the leasing UPDATE: each due delivery goes to exactly
//! one gateway, and a gateway never waits on rows another is leasing.

use crate::store::webhooks::{DELIVERY_COLUMNS, delivery_from_row};
use crate::store::{Delivery, StoreResult};

use super::PgStore;

/// Queues one event for the webhooks that want it: $1 event id, $2 event, $3 data (JSON text),
/// $4 now, $5 one webhook id (a test ping, whatever it subscribes to) or NULL for every active
/// webhook subscribed to $2 or to `*`.
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, data, status, attempts, next_attempt_at, created_at) \
    SELECT $1::text || ':' || w.id, w.id, $1::text, $2::text, $3::text, 'pending', 0, $4::bigint, $4::bigint FROM webhooks w \
    WHERE ($5::text IS NULL AND w.status = 'active' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(w.events::jsonb) j(v) WHERE j.v = $2::text OR j.v = '*')) \
       OR w.id = $5::text";

/// Events membership for listing webhooks: `events` holds `$2` or `*`.
const SUBSCRIBED: &str = "EXISTS (SELECT 1 FROM jsonb_array_elements_text(events::jsonb) j(v) WHERE j.v = $2 OR j.v = '*')";

crate::store::sql::webhooks::webhook_store!(PgStore, enqueue = ENQUEUE, subscribed = SUBSCRIBED);

impl PgStore {
    pub(super) async fn lease_due_rows(
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
}
