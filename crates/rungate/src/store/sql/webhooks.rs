//! `WebhookStore` for both SQL backends, written once (portable SQL, as `sql::agents`). What
//! differs is passed in: the outbox insert and the "subscribed to the event" test (SQLite's
//! `json_each`, PostgreSQL's `jsonb_array_elements_text`), and `lease_due_rows`, the one
//! query whose locking differs (see each backend's `webhooks.rs`).

/// Implements `WebhookStore` for `$store` (with `reads()`, `writes()` and `lease_due_rows`):
/// `$enqueue` is the outbox insert, `$subscribed` a condition true when the row's `events`
/// holds `$2` or `*`.
macro_rules! webhook_store {
    ($store:ty, enqueue = $enqueue:expr, subscribed = $subscribed:expr) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::store::sql::{conflict_or, found, page_binds, to_u64};
            use $crate::store::webhooks::{DELIVERY_COLUMNS, HOOK_COLUMNS, delivery_from_row, event_id, hook_from_row};
            use $crate::store::{
                Attempt, Delivery, DeliveryFilter, Page, StoreError, StoreResult, WebhookRecord, WebhookStore,
            };
            use $crate::webhook::{DeliveryStatus, WebhookStatus};

            fn events_json(hook: &WebhookRecord) -> String {
                serde_json::Value::from(hook.events.clone()).to_string()
            }

            #[async_trait]
            impl WebhookStore for $store {
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
                    .execute(self.writes())
                    .await
                    .map_err(|e| conflict_or(e, "webhook id"))?;
                    Ok(())
                }

                async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
                    let row = sqlx::query(&format!(
                        "SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(self.reads())
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
                    let filter = format!(
                        "(CAST($1 AS TEXT) IS NULL OR status = $1) AND (CAST($2 AS TEXT) IS NULL OR {})",
                        $subscribed
                    );
                    let (limit, offset) = page_binds(page);
                    let status = status.map(WebhookStatus::as_str);
                    let rows = sqlx::query(&format!(
                        "SELECT {HOOK_COLUMNS} FROM webhooks WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                    ))
                    .bind(status)
                    .bind(event)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.reads())
                    .await?;
                    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM webhooks WHERE {filter}"))
                        .bind(status)
                        .bind(event)
                        .fetch_one(self.reads())
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
                    .execute(self.writes())
                    .await?;
                    found(done.rows_affected())
                }

                async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
                    let mut tx = self.writes().begin().await?;
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
                    let done = sqlx::query($enqueue)
                        .bind(event_id())
                        .bind(event)
                        .bind(data.to_string())
                        .bind(now_ms)
                        .bind(only)
                        .execute(self.writes())
                        .await?;
                    Ok(done.rows_affected())
                }

                async fn lease_due(
                    &self,
                    now_ms: i64,
                    lease_until_ms: i64,
                    limit: u32,
                ) -> StoreResult<Vec<Delivery>> {
                    self.lease_due_rows(now_ms, lease_until_ms, limit).await
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
                            "UPDATE webhook_deliveries SET status = CASE WHEN CAST($1 AS BIGINT) IS NULL THEN 'dead' ELSE 'pending' END, attempts = attempts + 1, next_attempt_at = COALESCE(CAST($1 AS BIGINT), next_attempt_at), last_status = CAST($2 AS BIGINT), last_error = $3 WHERE id = $4",
                        )
                        .bind(*retry_at_ms)
                        .bind(status.map(i64::from))
                        .bind(error.clone()),
                    };
                    let done = query.bind(id).execute(self.writes()).await?;
                    found(done.rows_affected())
                }

                async fn deliveries(
                    &self,
                    webhook_id: &str,
                    f: &DeliveryFilter,
                    page: Page,
                ) -> StoreResult<(Vec<Delivery>, u64)> {
                    let filter = "webhook_id = $1 AND (CAST($2 AS TEXT) IS NULL OR status = CAST($2 AS TEXT)) AND (CAST($3 AS TEXT) IS NULL OR event = CAST($3 AS TEXT))";
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
                    .fetch_all(self.reads())
                    .await?;
                    let total: i64 = sqlx::query(&format!(
                        "SELECT COUNT(*) FROM webhook_deliveries WHERE {filter}"
                    ))
                    .bind(webhook_id)
                    .bind(status)
                    .bind(&f.event)
                    .fetch_one(self.reads())
                    .await?
                    .try_get(0)?;
                    let items = rows
                        .iter()
                        .map(delivery_from_row)
                        .collect::<StoreResult<_>>()?;
                    Ok((items, to_u64(total)))
                }
            }
        };
    };
}

pub(in crate::store) use webhook_store;
