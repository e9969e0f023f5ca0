//! A gateway killed with SIGKILL in the middle of load loses no settled spend: after a
//! restart on the same database, every run's spend is the sum of its recorded steps, the audit
//! chain holds, and no hold of the killed process still reserves budget.

use std::time::Duration;

use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::harness::{TestResult, admin_request as admin, user};
use crate::process;

fn sqlite(dir: &std::path::Path) -> String {
    format!(
        "storage:\n  type: sqlite\n  path: {}\ndemo_provider: off\nlog_level: warn\n",
        dir.join("rungate.db").display()
    )
}

fn call(latency_ms: u64) -> Value {
    json!({"model": "gpt-4o", "max_tokens": 1000, "messages": user(&"x".repeat(3000)),
           "mock": {"usage": {"input_tokens": crate::budget::costly_input_tokens(), "output_tokens": 1000}, "latency_ms": latency_ms}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_no_settled_spend_and_leaves_no_hold() -> TestResult {
    let mock = MockUpstream::start(MockConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let port = process::free_port()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut gateway = process::start(&http, dir.path(), port, &sqlite(dir.path())).await?;
    let url = gateway.url.clone();
    let key = admin(&http, &url, reqwest::Method::POST, "/api/provider-keys", Some(json!({"provider": "openai", "name": "mock", "api_key": "sk", "base_url": mock.base_url()}))).await?;
    // A $0.05 cap: each call costs about $0.011 and is first estimated at $0.01254.
    let policy = admin(
        &http,
        &url,
        reqwest::Method::POST,
        "/api/policies",
        Some(json!({"name": "crash", "budget": {"hard_limit_usd": 0.05}})),
    )
    .await?;
    let agent = admin(&http, &url, reqwest::Method::POST, "/api/agents", Some(json!({"name": "crash", "policy_id": policy["data"]["id"], "provider_keys": {"openai": key["data"]["id"]}}))).await?;
    let token = agent["data"]["api_key"].as_str().ok_or("token")?.to_owned();
    let send = |latency| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            http.post(format!("{url}/v1/chat/completions"))
                .bearer_auth(token)
                .header("x-rungate-run-id", "crash-1")
                .json(&call(latency))
                .send()
                .await
        }
    };
    // Two calls settle (~$0.022); two more hang upstream, holding the rest of the cap, when
    // the gateway dies.
    for _ in 0..2 {
        assert_eq!(send(0).await?.status(), 200);
    }
    let in_flight: Vec<_> = (0..2).map(|_| tokio::spawn(send(5_000))).collect();
    for _ in 0..500 {
        if mock.request_count() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mock.request_count(), 4, "two calls are in flight");
    let refused = send(0).await?;
    assert_eq!(
        refused.status(),
        402,
        "the holds of the calls in flight fill the cap"
    );
    gateway.kill()?;
    for call in in_flight {
        assert!(call.await?.is_err(), "the killed gateway answered nobody");
    }

    let mut restarted = process::start(&http, dir.path(), port, &sqlite(dir.path())).await?;
    let run =
        admin(&http, &url, reqwest::Method::GET, "/api/runs/crash-1", None).await?["data"].clone();
    let steps = admin(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/runs/crash-1/steps?limit=1000",
        None,
    )
    .await?;
    let step_sum: f64 = steps["data"]
        .as_array()
        .ok_or("steps")?
        .iter()
        .filter_map(|s| s["cost_usd"].as_f64())
        .sum();
    assert_eq!(run["steps_count"], 2, "only settled calls are steps");
    assert!((run["total_cost_usd"].as_f64().unwrap_or(0.0) - step_sum).abs() < 1e-12);
    let ledger = admin(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/runs/crash-1/ledger",
        None,
    )
    .await?;
    assert!((ledger["sum_usd"].as_f64().unwrap_or(0.0) - step_sum).abs() < 1e-12);
    let verify = admin(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/runs/crash-1/audit/verify",
        None,
    )
    .await?;
    assert_eq!(verify["data"]["valid"], true);
    // No hold survived: the ~$0.028 left admits two more $0.01254 estimates, then no more.
    assert_eq!(send(0).await?.status(), 200);
    assert_eq!(send(0).await?.status(), 200);
    assert_eq!(send(0).await?.status(), 402);
    restarted.kill()?;
    Ok(())
}
