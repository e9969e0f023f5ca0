//! `WebhookStore` on SQLite: the shared implementation (`store::sql::webhooks`) with SQLite's
//! JSON test and outbox insert (run by the run writer inside the transaction of the event it
//! delivers).

use crate::store::webhooks::{DELIVERY_COLUMNS, delivery_from_row};
use crate::store::{Delivery, StoreResult};

use super::SqliteStore;

/// Queues one event for the webhooks that want it: ?1 event id, ?2 event, ?3 data (JSON text),
/// ?4 now, ?5 one webhook id (a test ping, whatever it subscribes to) or NULL for every active
/// webhook subscribed to ?2 or to `*`.
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, data, status, attempts, next_attempt_at, created_at) \
    SELECT ?1 || ':' || w.id, w.id, ?1, ?2, ?3, 'pending', 0, ?4, ?4 FROM webhooks w \
    WHERE (?5 IS NULL AND w.status = 'active' AND EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = ?2 OR j.value = '*')) \
       OR w.id = ?5";

/// Events membership for listing webhooks: `events` holds `$2` or `*`.
const SUBSCRIBED: &str =
    "EXISTS (SELECT 1 FROM json_each(events) j WHERE j.value = $2 OR j.value = '*')";

crate::store::sql::webhooks::webhook_store!(
    SqliteStore,
    enqueue = ENQUEUE,
    subscribed = SUBSCRIBED
);

impl SqliteStore {
    pub(super) async fn lease_due_rows(
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
}
