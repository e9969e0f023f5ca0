//! Webhooks and their outbox. Deliveries of run events are enqueued by the run writer in the
//! same transaction as the audit event they carry; admin events (`agent.created`, ...) and test
//! pings are enqueued here. The delivery worker leases due rows, so one slow receiver does not
//! get the same delivery twice from one gateway.

use async_trait::async_trait;
use serde_json::Value;

use super::StoreError;
use super::sql::{Columns, json_column};
use super::{Page, StoreResult};
use crate::webhook::{DeliveryStatus, WebhookStatus};

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// AES-256-GCM under the master key.
    pub encrypted_secret: String,
    /// The first characters of the secret, to tell secrets apart in a list.
    pub secret_prefix: String,
    pub previous_encrypted_secret: Option<String>,
    pub previous_secret_until_ms: Option<i64>,
    pub status: WebhookStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    /// The envelope's `id`, the same on every attempt, for receivers to de-duplicate.
    pub event_id: String,
    pub event: String,
    pub data: Value,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

/// How one attempt went.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    Delivered {
        status: u16,
        at_ms: i64,
    },
    /// `retry_at_ms: None` dead-letters the delivery.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at_ms: Option<i64>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event: Option<String>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, hook: &WebhookRecord) -> StoreResult<()>;
    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord>;
    async fn list_webhooks(
        &self,
        status: Option<WebhookStatus>,
        event: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<WebhookRecord>, u64)>;
    /// Writes every field of an existing webhook.
    async fn update_webhook(&self, hook: &WebhookRecord) -> StoreResult<()>;
    async fn delete_webhook(&self, id: &str) -> StoreResult<()>;
    /// Enqueues `event` for every active webhook subscribed to it, or for `only` whatever it
    /// subscribes to (test pings). Returns how many deliveries were queued.
    async fn enqueue(
        &self,
        event: &str,
        data: &Value,
        only: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Pending deliveries due at `now_ms`, leased until `lease_until_ms`.
    async fn lease_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    async fn record_attempt(&self, id: &str, attempt: &Attempt) -> StoreResult<()>;
    async fn deliveries(
        &self,
        webhook_id: &str,
        filter: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, u64)>;
}

pub(super) const HOOK_COLUMNS: &str = "id, name, url, events, encrypted_secret, secret_prefix, previous_encrypted_secret, previous_secret_until, status, created_at, updated_at";

pub(super) const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event, data, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

pub(super) fn hook_from_row(row: &impl Columns) -> StoreResult<WebhookRecord> {
    let events: String = row.col("events")?;
    let status: String = row.col("status")?;
    Ok(WebhookRecord {
        id: row.col("id")?,
        name: row.col("name")?,
        url: row.col("url")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?,
        encrypted_secret: row.col("encrypted_secret")?,
        secret_prefix: row.col("secret_prefix")?,
        previous_encrypted_secret: row.col("previous_encrypted_secret")?,
        previous_secret_until_ms: row.col("previous_secret_until")?,
        status: WebhookStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("webhook status {status}")))?,
        created_at_ms: row.col("created_at")?,
        updated_at_ms: row.col("updated_at")?,
    })
}

pub(super) fn delivery_from_row(row: &impl Columns) -> StoreResult<Delivery> {
    let data: String = row.col("data")?;
    let status: String = row.col("status")?;
    Ok(Delivery {
        id: row.col("id")?,
        webhook_id: row.col("webhook_id")?,
        event_id: row.col("event_id")?,
        event: row.col("event")?,
        data: json_column(&data, "data")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status}")))?,
        attempts: u32::try_from(row.col::<i64>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at_ms: row.col("next_attempt_at")?,
        last_status: row
            .col::<Option<i64>>("last_status")?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: row.col("last_error")?,
        created_at_ms: row.col("created_at")?,
        delivered_at_ms: row.col("delivered_at")?,
    })
}

/// A new envelope id.
pub(super) fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}
