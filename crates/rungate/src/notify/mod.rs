//! Telling the outside world. `outbox` delivers webhooks from their durable outbox; this file
//! tells approvers: when a gate opens or is decided, its rule's `approver_channel` hears about
//! it. `slack://#channel` posts a Slack message to the incoming-webhook URL configured for that
//! channel (`approver_channels` in the config); an `http(s)://` channel receives the webhook
//! envelope `{"id","event","delivered_at","data"}`, `id` unique per event for de-duplication.
//!
//! Delivery happens off the request path, in tasks graceful shutdown waits for, and retries with
//! exponential backoff (1 s, doubling) on a failure or a non-2xx answer. It is kept in memory: a
//! gateway killed mid-retry loses the notification, never the gate, which stays pending and
//! listed in `/api/approval-requests` until someone decides.

pub mod otlp;
pub mod outbox;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use crate::gate::Gate;
use crate::run;
use crate::security::Secret;

/// Attempts per notification before it is given up (and logged).
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What happened to a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateEvent {
    Pending,
    Approved,
    Rejected,
}

impl GateEvent {
    fn name(self) -> &'static str {
        match self {
            GateEvent::Pending => "approval.pending",
            GateEvent::Approved => "approval.approved",
            GateEvent::Rejected => "approval.rejected",
        }
    }
}

#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    slack: BTreeMap<String, Secret<String>>,
    tasks: TaskTracker,
    backoff: Duration,
}

impl Notifier {
    pub fn new(
        slack: BTreeMap<String, Secret<String>>,
        tasks: TaskTracker,
    ) -> Result<Notifier, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Notifier {
            client,
            slack,
            tasks,
            backoff: FIRST_BACKOFF,
        })
    }

    /// The pooled client outbound notifications share.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Tells each gate's approver channel about `event`, in the background.
    pub fn gates(&self, event: GateEvent, gates: &[Gate]) {
        for gate in gates {
            let Some(channel) = gate.approver_channel.as_deref() else {
                continue;
            };
            let Some((url, body)) = self.message(channel, event, gate) else {
                continue;
            };
            let (client, backoff) = (self.client.clone(), self.backoff);
            let gate_id = gate.id.to_string();
            self.tasks.spawn(async move {
                deliver(&client, &url, &body, backoff, &gate_id, event).await;
            });
        }
    }

    /// Where to post and what, for one channel; `None` for a Slack channel nobody configured.
    fn message(&self, channel: &str, event: GateEvent, gate: &Gate) -> Option<(String, Value)> {
        if channel.starts_with("slack://") {
            let Some(url) = self.slack.get(channel) else {
                tracing::warn!(channel, gate_id = %gate.id, "no incoming-webhook URL configured for this approver channel (approver_channels)");
                return None;
            };
            return Some((url.expose().clone(), slack_message(event, gate)));
        }
        Some((channel.to_owned(), envelope(event, gate)))
    }
}

async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    mut backoff: Duration,
    gate_id: &str,
    event: GateEvent,
) {
    for attempt in 1..=ATTEMPTS {
        let why = match client.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("answered {}", response.status()),
            Err(err) => crate::providers::upstream_error_chain(&err),
        };
        // The URL is not logged: a Slack webhook URL is a credential.
        tracing::warn!(gate_id, event = event.name(), attempt, error = %why, "approver notification failed");
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    tracing::error!(
        gate_id,
        event = event.name(),
        "approver notification given up"
    );
}

fn gate_data(gate: &Gate) -> Value {
    json!({
        "id": gate.id, "run_id": gate.run_id, "agent_id": gate.agent_id,
        "status": gate.status.as_str(), "trigger": gate.trigger.as_str(), "rule": gate.rule,
        "proposed_action": {"tool": gate.tool, "args": gate.args},
        "approver_channel": gate.approver_channel,
        "expires_at": run::rfc3339(gate.expires_at_ms),
        "decided_by": gate.decided_by, "reason": gate.reason,
    })
}

/// The webhook envelope of SPEC §8.
fn envelope(event: GateEvent, gate: &Gate) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::now_v7().simple()),
        "event": event.name(),
        "delivered_at": run::rfc3339(run::now_ms()),
        "data": gate_data(gate),
    })
}

/// A Slack incoming-webhook message: a one-line `text` (notifications) and blocks with the
/// call under review and the commands that decide it.
fn slack_message(event: GateEvent, gate: &Gate) -> Value {
    let args = serde_json::to_string_pretty(&gate.args).unwrap_or_default();
    let headline = match event {
        GateEvent::Pending => format!(
            "Approval needed: `{}` in run `{}` ({})",
            gate.tool, gate.run_id, gate.rule
        ),
        GateEvent::Approved => format!(
            "Approved: `{}` in run `{}` by {}",
            gate.tool,
            gate.run_id,
            gate.decided_by.as_deref().unwrap_or("an approver")
        ),
        GateEvent::Rejected => format!(
            "Rejected: `{}` in run `{}` by {}{}",
            gate.tool,
            gate.run_id,
            gate.decided_by.as_deref().unwrap_or("an approver"),
            gate.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    };
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}})];
    if event == GateEvent::Pending {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Arguments*\n```{args}```\n*Expires* {}", run::rfc3339(gate.expires_at_ms))}}));
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("`rungate approvals approve {0}` · `rungate approvals reject {0} --reason ...`", gate.id)}]}));
    }
    json!({"text": headline, "blocks": blocks})
}
