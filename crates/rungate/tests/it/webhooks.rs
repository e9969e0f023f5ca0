//! Webhooks as a receiver sees them: signed envelopes it can verify with the documented
//! algorithm, retries with backoff until it answers 2xx (and then never again), and a durable
//! outbox that a gateway restart in the middle of a backoff does not empty.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{self, Harness, TestResult, user};

/// What a receiver got: the signature headers and the raw body of each POST.
#[derive(Clone, Debug)]
struct Received {
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Requests still to be answered 500.
    failures_left: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(failures: u32) -> TestResult<(String, Receiver)> {
        let receiver = Receiver::default();
        *receiver.failures_left.lock().unwrap() = failures;
        let state = receiver.clone();
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().unwrap().push(Received {
                        timestamp: header("x-rungate-timestamp"),
                        signature: header("x-rungate-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let mut left = state.failures_left.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((url, receiver))
    }

    fn of_event(&self, event_id: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.json()["id"] == event_id)
            .cloned()
            .collect()
    }

    fn first(&self, event: &str) -> Option<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.json()["event"] == event)
            .cloned()
    }
}

fn fast(backoff_ms: u64) -> harness::Setup {
    harness::Setup {
        extra_yaml: format!("webhook_backoff_ms: {backoff_ms}\n"),
        ..harness::Setup::default()
    }
}

async fn subscribe(h: &Harness, url: &str, events: Value) -> TestResult<(String, String)> {
    let created = h
        .admin_post(
            "/api/webhooks",
            json!({"name": "ops", "url": url, "events": events}),
        )
        .await?;
    let id = created["data"]["id"].as_str().ok_or("id")?.to_owned();
    let secret = created["data"]["secret"]
        .as_str()
        .ok_or("secret")?
        .to_owned();
    Ok((id, secret))
}

fn expected_signature(secret: &str, timestamp: &str, body: &str) -> TestResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(format!("{timestamp}.{body}").as_bytes());
    Ok(format!("v1={}", hex::encode(mac.finalize().into_bytes())))
}

#[tokio::test]
async fn deliveries_are_signed_with_the_documented_algorithm_and_secrets_are_shown_once()
-> TestResult {
    let (url, receiver) = Receiver::start(0).await?;
    let h = harness::start_with(fast(50)).await?;
    let (id, secret) = subscribe(&h, &url, json!(["run.started", "agent.created"])).await?;
    assert!(secret.starts_with("whsec_"));
    let shown = h.admin_get(&format!("/api/webhooks/{id}")).await?;
    assert!(
        shown["data"].get("secret").is_none(),
        "the secret is never shown again"
    );
    assert!(!shown.to_string().contains(&secret));

    let (_, token) = h.agent("signed").await?;
    h.chat(
        &token,
        json!({"model": "gpt-4o-mini", "messages": user("hi")}),
        &[("x-rungate-run-id", "hooked")],
    )
    .await?;
    h.eventually("run.started and agent.created arrive", || async {
        Ok(receiver.first("run.started").is_some() && receiver.first("agent.created").is_some())
    })
    .await?;
    let got = receiver.first("run.started").ok_or("run.started")?;
    assert_eq!(
        got.signature,
        expected_signature(&secret, &got.timestamp, &got.body)?
    );
    let envelope = got.json();
    assert!(
        envelope["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    assert!(envelope["delivered_at"].is_string());
    assert_eq!(envelope["data"]["run_id"], "hooked");

    // A rotation: the new secret signs, and the previous one still does beside it.
    let rotated = h
        .admin_post(&format!("/api/webhooks/{id}/rotate-secret"), json!({}))
        .await?;
    let new_secret = rotated["data"]["secret"]
        .as_str()
        .ok_or("new secret")?
        .to_owned();
    assert_ne!(new_secret, secret);
    h.admin_post(&format!("/api/webhooks/{id}/test"), json!({}))
        .await?;
    h.eventually("the test ping arrives", || async {
        Ok(receiver.first("webhook.test").is_some())
    })
    .await?;
    let ping = receiver.first("webhook.test").ok_or("ping")?;
    let (new_sig, old_sig) = (
        expected_signature(&new_secret, &ping.timestamp, &ping.body)?,
        expected_signature(&secret, &ping.timestamp, &ping.body)?,
    );
    assert_eq!(ping.signature, format!("{new_sig},{old_sig}"));
    Ok(())
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_once_more_and_then_never_again() -> TestResult
{
    let (url, receiver) = Receiver::start(3).await?;
    let h = harness::start_with(fast(40)).await?;
    let (id, _) = subscribe(&h, &url, json!(["*"])).await?;
    h.admin_post(&format!("/api/webhooks/{id}/test"), json!({}))
        .await?;
    let deliveries = || async {
        let log = h
            .admin_get(&format!("/api/webhooks/{id}/deliveries"))
            .await?;
        Ok::<Value, Box<dyn std::error::Error + Send + Sync>>(log["data"][0].clone())
    };
    h.eventually("the delivery succeeds", || async {
        Ok(deliveries().await?["status"] == "delivered")
    })
    .await?;
    let delivery = deliveries().await?;
    assert_eq!(
        delivery["attempts"], 4,
        "three failures, then the success: {delivery}"
    );
    assert_eq!(delivery["last_status"], 204);
    let event_id = delivery["event_id"].as_str().ok_or("event id")?.to_owned();

    // A second event, delivered after the first would have been retried again (40, 80, 160 ms
    // backoffs): by the time it arrives, a stray redelivery would have too.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    h.admin_post(&format!("/api/webhooks/{id}/test"), json!({}))
        .await?;
    h.eventually("the second event arrives", || async {
        Ok(receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.json()["event"] == "webhook.test")
            .count()
            >= 5)
    })
    .await?;
    let attempts = receiver.of_event(&event_id);
    assert_eq!(
        attempts.len(),
        4,
        "the same event id on every attempt, and no attempt after the success"
    );
    Ok(())
}

#[tokio::test]
async fn a_delivery_waiting_out_its_backoff_survives_a_gateway_restart() -> TestResult {
    let (url, receiver) = Receiver::start(1).await?;
    // A 3 s backoff: long enough that a stop under load still comes before the retry.
    let h = harness::start_with(fast(3000)).await?;
    let (hook, _) = subscribe(&h, &url, json!(["run.started"])).await?;
    let (_, token) = h.agent("restarted").await?;
    h.chat(
        &token,
        json!({"model": "gpt-4o-mini", "messages": user("hi")}),
        &[("x-rungate-run-id", "restart-hook")],
    )
    .await?;
    h.eventually("the first attempt fails", || async {
        Ok(!receiver.got.lock().unwrap().is_empty())
    })
    .await?;
    let first = receiver.first("run.started").ok_or("first attempt")?;
    // Stopped only once the failure is recorded: a gateway stopped mid-attempt leaves the row
    // leased (at-least-once: it is retried when the lease runs out, a minute later).
    h.eventually("the failed attempt is recorded", || async {
        let log = h
            .admin_get(&format!("/api/webhooks/{hook}/deliveries"))
            .await?;
        Ok(log["data"][0]["attempts"] == 1 && log["data"][0]["status"] == "pending")
    })
    .await?;

    // The retry is due three seconds after the failure; the gateway is gone before then.
    let (mock, dir, ..) = h.stop().await?;
    assert_eq!(
        receiver.got.lock().unwrap().len(),
        1,
        "not retried before the restart"
    );
    let h = harness::boot(mock, dir, "webhook_backoff_ms: 3000\n").await?;
    h.eventually("the retry after the restart is delivered", || async {
        Ok(receiver.got.lock().unwrap().len() >= 2)
    })
    .await?;
    let retried = receiver.of_event(first.json()["id"].as_str().unwrap_or_default());
    assert_eq!(retried.len(), 2, "the same event, once more");
    assert_eq!(retried[1].json()["data"]["run_id"], "restart-hook");
    drop(h);
    Ok(())
}

#[tokio::test]
async fn metrics_show_latency_overhead_spend_gates_and_deliveries() -> TestResult {
    let (url, receiver) = Receiver::start(0).await?;
    let h = harness::start_with(fast(50)).await?;
    subscribe(&h, &url, json!(["approval.pending"])).await?;
    let policy = h
        .admin_post("/api/policies", json!({"name": "metered", "allowed_models": ["gpt-4o-mini"], "require_approval": ["execute_code"]}))
        .await?;
    let (agent_id, token) = h
        .agent_with(json!({"name": "metered", "policy_id": policy["data"]["id"]}))
        .await?;
    let priced = json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}});
    assert_eq!(
        h.chat(&token, priced, &[("x-rungate-run-id", "metered")])
            .await?
            .status,
        200
    );
    let gated = json!({"model": "gpt-4o-mini", "messages": user("run"),
                       "tools": [{"type": "function", "function": {"name": "execute_code"}}]});
    let asked = h
        .chat(&token, gated, &[("x-rungate-run-id", "metered")])
        .await?;
    let gate = asked.json()["approval_requests"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    h.admin_post(&format!("/api/approval-requests/{gate}/approve"), json!({}))
        .await?;
    h.eventually("the webhook is delivered", || async {
        Ok(receiver.first("approval.pending").is_some())
    })
    .await?;
    let scrape = || async {
        Ok::<String, Box<dyn std::error::Error + Send + Sync>>(
            h.http
                .get(format!("{}/metrics", h.url))
                .send()
                .await?
                .text()
                .await?,
        )
    };
    h.eventually("the delivery is counted", || async {
        Ok(scrape()
            .await?
            .contains("rungate_webhook_deliveries_total{result=\"delivered\"} 1"))
    })
    .await?;
    let metrics = scrape().await?;
    for line in [
        "rungate_response_latency_ms_count{route=\"chat_completions\",status=\"200\"} 1".to_owned(),
        "rungate_response_latency_ms_count{route=\"chat_completions\",status=\"202\"} 1".to_owned(),
        "rungate_gateway_overhead_ms_count 1".to_owned(),
        format!(
            "rungate_spend_usd_nanos_total{{agent=\"{agent_id}\",model=\"gpt-4o-mini\"}} 450000"
        ),
        "rungate_approval_gates_total{trigger=\"declared_tool\",status=\"pending\"} 1".to_owned(),
        "rungate_approval_gates_total{trigger=\"declared_tool\",status=\"approved\"} 1".to_owned(),
    ] {
        assert!(metrics.contains(&line), "missing {line}:\n{metrics}");
    }
    Ok(())
}

#[tokio::test]
async fn a_receiver_that_never_answers_2xx_is_dead_lettered_after_the_last_attempt() -> TestResult {
    let (url, receiver) = Receiver::start(u32::MAX).await?;
    // A 2 ms base: the whole schedule (2 + 4 + ... + 512 ms) takes about a second here.
    let h = harness::start_with(fast(2)).await?;
    let (id, _) = subscribe(&h, &url, json!(["webhook.test"])).await?;
    h.admin_post(&format!("/api/webhooks/{id}/test"), json!({}))
        .await?;
    let dead_log = format!("/api/webhooks/{id}/deliveries?status=dead");
    let log = || h.admin_get(&dead_log);
    h.eventually("the delivery is dead-lettered", || async {
        Ok(log().await?["total"] == 1)
    })
    .await?;
    let dead = log().await?["data"][0].clone();
    assert_eq!(dead["attempts"], rungate::webhook::MAX_ATTEMPTS);
    assert_eq!(dead["last_status"], 500);
    assert_eq!(
        receiver.got.lock().unwrap().len() as u32,
        rungate::webhook::MAX_ATTEMPTS
    );
    Ok(())
}
