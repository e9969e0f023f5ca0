//! Webhooks (SPEC §8), the pure part: which events exist, how a delivery is signed, and when a
//! failed delivery is tried again. Sending lives in `notify::outbox`; storage in `store`.
//!
//! Signature: `X-Rungate-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, with
//! `X-Rungate-Timestamp: <unix seconds>`. While a secret is being rotated both the new and the
//! previous secret sign, as two comma-separated `v1=` entries, so a receiver that still holds
//! the old secret keeps verifying until it switches.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Every event a webhook may subscribe to; `*` subscribes to all of them.
pub const EVENTS: &[&str] = &[
    "run.started",
    "run.completed",
    "run.stopped",
    "run.blocked",
    "step.failed_over",
    "approval.pending",
    "approval.approved",
    "approval.rejected",
    "approval.expired",
    "budget.alert",
    "budget.exceeded",
    "policy.drift",
    "agent.created",
    "admin_token.created",
    "webhook.test",
];

/// Is `kind` (an audit event kind, say) delivered to webhooks?
pub fn is_event(kind: &str) -> bool {
    EVENTS.contains(&kind)
}

/// The `data` of a run event's envelope: the event's own data with the run, actor and time.
pub fn envelope_data(run_id: &str, event: &crate::audit::AuditEvent) -> serde_json::Value {
    let mut data = match &event.data {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    data.insert("run_id".into(), run_id.into());
    data.insert("actor".into(), event.actor.clone().into());
    data.insert("at".into(), crate::run::rfc3339(event.at_ms).into());
    serde_json::Value::Object(data)
}

/// Attempts before a delivery is dead-lettered. With the first retry after the base backoff and
/// each later one doubling, a 1 s base gives up after 1 + 2 + … + 256 = 511 s, about 8.5 minutes.
pub const MAX_ATTEMPTS: u32 = 10;

/// How long a previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// The wait before attempt `attempts + 1`, after `attempts` failures (at least one).
pub fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "active",
            WebhookStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<WebhookStatus> {
        match raw {
            "active" => Some(WebhookStatus::Active),
            "disabled" => Some(WebhookStatus::Disabled),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Given up after [`MAX_ATTEMPTS`], or its webhook is gone.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<DeliveryStatus> {
        match raw {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `X-Rungate-Signature` value: the current secret's, then the previous one's if it still signs.
pub fn signature_header(
    current: &str,
    previous: Option<&str>,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut header = format!("v1={}", sign(current, timestamp, body));
    if let Some(previous) = previous {
        header.push_str(",v1=");
        header.push_str(&sign(previous, timestamp, body));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_algorithm() {
        let sig = sign("whsec_test", 1700000000, br#"{"id":"evt_1"}"#);
        let expected = Hmac::<Sha256>::new_from_slice(b"whsec_test").map(|mut mac| {
            mac.update(br#"1700000000.{"id":"evt_1"}"#);
            hex::encode(mac.finalize().into_bytes())
        });
        assert_eq!(Ok(sig.clone()), expected.map_err(|_| ()));
        assert_eq!(sig.len(), 64);
        let both = signature_header("new", Some("old"), 1, b"x");
        assert_eq!(
            both,
            format!("v1={},v1={}", sign("new", 1, b"x"), sign("old", 1, b"x"))
        );
    }

    #[test]
    fn retries_double_and_give_up_after_about_eight_and_a_half_minutes() {
        let waits: Vec<u64> = (1..MAX_ATTEMPTS).map(|a| backoff_ms(1000, a)).collect();
        assert_eq!(waits[..3], [1000, 2000, 4000]);
        assert_eq!(waits.iter().sum::<u64>(), 511_000);
    }
}
