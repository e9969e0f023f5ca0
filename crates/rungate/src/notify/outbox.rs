//! The webhook delivery worker. It leases due rows of the outbox (`webhook_deliveries`), posts
//! each as the signed envelope `{"id","event","delivered_at","data"}`, and records the outcome:
//! delivered on a 2xx; otherwise retried after the base backoff doubling per failure, and
//! dead-lettered after [`webhook::MAX_ATTEMPTS`]. The outbox is durable, so a delivery waiting
//! out its backoff when the gateway stops is picked up by the next start.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use crate::app::Gateway;
use crate::run;
use crate::store::{Attempt, Delivery};
use crate::webhook::{self, WebhookStatus};

/// A leased delivery is not handed out again for this long (longer than one attempt can take).
const LEASE_MS: i64 = 60_000;
/// Deliveries attempted at once.
const BATCH: u32 = 32;

/// Runs until the gateway stops.
pub async fn deliver_webhooks(gw: Arc<Gateway>) {
    let base = gw.config.webhook_backoff;
    let poll = base.clamp(Duration::from_millis(20), Duration::from_millis(250));
    loop {
        tokio::time::sleep(poll).await;
        let now = run::now_ms();
        let due = match gw
            .stores
            .webhooks
            .lease_due(now, now + LEASE_MS, BATCH)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the webhook outbox");
                continue;
            }
        };
        let mut attempts = JoinSet::new();
        for delivery in due {
            let gw = gw.clone();
            attempts.spawn(async move { attempt(&gw, delivery).await });
        }
        while attempts.join_next().await.is_some() {}
    }
}

async fn attempt(gw: &Gateway, delivery: Delivery) {
    let outcome = send(gw, &delivery).await;
    gw.metrics.record_delivery(match &outcome {
        Attempt::Delivered { .. } => "delivered",
        Attempt::Failed {
            retry_at_ms: Some(_),
            ..
        } => "failed",
        Attempt::Failed {
            retry_at_ms: None, ..
        } => "dead",
    });
    if let Attempt::Failed {
        error, retry_at_ms, ..
    } = &outcome
    {
        tracing::warn!(delivery_id = %delivery.id, event = %delivery.event, attempt = delivery.attempts + 1,
            dead = retry_at_ms.is_none(), error = %error, "webhook delivery failed");
    }
    if let Err(err) = gw
        .stores
        .webhooks
        .record_attempt(&delivery.id, &outcome)
        .await
    {
        tracing::error!(delivery_id = %delivery.id, error = %err, "cannot record a webhook attempt");
    }
}

async fn send(gw: &Gateway, delivery: &Delivery) -> Attempt {
    let dead = |error: &str| Attempt::Failed {
        status: None,
        error: error.to_owned(),
        retry_at_ms: None,
    };
    let hook = match gw.stores.webhooks.get_webhook(&delivery.webhook_id).await {
        Ok(hook) => hook,
        Err(crate::store::StoreError::NotFound) => return dead("webhook deleted"),
        Err(err) => return retry(gw, delivery, None, format!("store: {err}")),
    };
    if hook.status == WebhookStatus::Disabled && delivery.event != "webhook.test" {
        return dead("webhook disabled");
    }
    let keys = gw.directory.master_key();
    let secret = match keys.decrypt(&hook.encrypted_secret) {
        Ok(secret) => secret,
        Err(err) => return dead(&format!("cannot decrypt the webhook secret: {err}")),
    };
    let now = run::now_ms();
    let previous = hook
        .previous_encrypted_secret
        .as_deref()
        .filter(|_| {
            hook.previous_secret_until_ms
                .is_some_and(|until| until > now)
        })
        .and_then(|stored| keys.decrypt(stored).ok());
    let body = json!({
        "id": delivery.event_id, "event": delivery.event,
        "delivered_at": run::rfc3339(now), "data": delivery.data,
    })
    .to_string();
    let timestamp = now / 1000;
    let signature = webhook::signature_header(
        secret.expose(),
        previous.as_ref().map(|p| p.expose().as_str()),
        timestamp,
        body.as_bytes(),
    );
    let response = gw
        .notifier
        .client()
        .post(&hook.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-rungate-timestamp", timestamp.to_string())
        .header("x-rungate-signature", signature)
        .header("x-rungate-event", delivery.event.as_str())
        .header("x-rungate-delivery", delivery.id.as_str())
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Attempt::Delivered {
            status: r.status().as_u16(),
            at_ms: run::now_ms(),
        },
        Ok(r) => retry(
            gw,
            delivery,
            Some(r.status().as_u16()),
            format!("answered {}", r.status()),
        ),
        Err(err) => retry(
            gw,
            delivery,
            None,
            crate::providers::upstream_error_chain(&err),
        ),
    }
}

/// A failure: retried after the backoff, or dead-lettered once the attempts are used up.
fn retry(gw: &Gateway, delivery: &Delivery, status: Option<u16>, error: String) -> Attempt {
    let failures = delivery.attempts + 1;
    let base = u64::try_from(gw.config.webhook_backoff.as_millis()).unwrap_or(u64::MAX);
    let retry_at_ms = (failures < webhook::MAX_ATTEMPTS).then(|| {
        run::now_ms()
            .saturating_add(i64::try_from(webhook::backoff_ms(base, failures)).unwrap_or(i64::MAX))
    });
    Attempt::Failed {
        status,
        error,
        retry_at_ms,
    }
}
