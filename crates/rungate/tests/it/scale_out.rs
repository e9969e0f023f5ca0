//! Several gateways on one PostgreSQL keep one run's promises (issue 6): three `rungate`
//! processes serve the same run round-robin, and the run still has one budget, one rate limit,
//! one approval and one audit chain; one of them killed with SIGKILL mid-load loses no settled
//! spend, and its holds expire and are released while the others keep serving.

use std::time::Duration;

use futures::future::join_all;
use mock_upstream::{MockConfig, MockUpstream};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{TestResult, admin_request as admin, user};
use crate::pg::Schema;
use crate::process::{self, Process};

/// One master key for all three: provider keys encrypted by one gateway are read by the others.
const MASTER_KEY: &str = "4f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170605f4e3";

fn http() -> TestResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()?)
}

/// Three gateways on `schema`, started at once (their migrations race and must not collide).
async fn three_gateways(
    http: &reqwest::Client,
    dir: &std::path::Path,
    schema: &Schema,
) -> TestResult<Vec<Process>> {
    let yaml = format!(
        "{}encryption_key: {MASTER_KEY}\ndemo_provider: off\nlog_level: warn\n",
        schema.storage_yaml("  hold_ttl_ms: 2000\n  max_connections: 12\n")
    );
    let ports = [
        process::free_port()?,
        process::free_port()?,
        process::free_port()?,
    ];
    let started = join_all(
        ports
            .iter()
            .map(|port| process::start(http, dir, *port, &yaml)),
    )
    .await;
    started.into_iter().collect()
}

/// An agent of a new policy `policy`, its calls routed to the mock; returns its token.
async fn agent(
    http: &reqwest::Client,
    url: &str,
    key_id: &Value,
    name: &str,
    policy: Value,
) -> TestResult<String> {
    let mut policy = policy;
    policy["name"] = json!(name);
    let created = admin(http, url, Method::POST, "/api/policies", Some(policy)).await?;
    let agent = admin(http, url, Method::POST, "/api/agents", Some(json!({"name": name, "policy_id": created["data"]["id"], "provider_keys": {"openai": key_id}}))).await?;
    Ok(agent["data"]["api_key"]
        .as_str()
        .ok_or("no agent token")?
        .to_owned())
}

async fn provider_key(http: &reqwest::Client, url: &str, mock: &MockUpstream) -> TestResult<Value> {
    let key = admin(http, url, Method::POST, "/api/provider-keys", Some(json!({"provider": "openai", "name": "mock", "api_key": "sk-mock", "base_url": mock.base_url()}))).await?;
    Ok(key["data"]["id"].clone())
}

/// `count` copies of `body` for run `run_id`, sent at once, round-robin over `gateways`;
/// returns each answer's status.
async fn burst(
    http: &reqwest::Client,
    gateways: &[&str],
    token: &str,
    run_id: &str,
    body: &Value,
    count: usize,
) -> TestResult<Vec<u16>> {
    let calls = (0..count).map(|i| {
        let request = http
            .post(format!(
                "{}/v1/chat/completions",
                gateways[i % gateways.len()]
            ))
            .bearer_auth(token)
            .header("x-rungate-run-id", run_id)
            .json(body);
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    });
    let mut statuses = Vec::with_capacity(count);
    for answer in join_all(calls).await {
        statuses.push(answer??);
    }
    Ok(statuses)
}

fn tally(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// A gpt-4o call estimated at $0.01254 before forwarding and costing about $0.011.
fn costly(latency_ms: u64) -> Value {
    json!({"model": "gpt-4o", "max_tokens": 1000, "messages": user(&"x".repeat(3000)),
           "mock": {"usage": {"input_tokens": crate::budget::costly_input_tokens(), "output_tokens": 1000}, "latency_ms": latency_ms}})
}

/// The run's spend, the sum of its steps' costs and of its ledger, and whether its chain holds.
async fn books(
    http: &reqwest::Client,
    url: &str,
    run_id: &str,
) -> TestResult<(f64, f64, f64, u64)> {
    let run =
        admin(http, url, Method::GET, &format!("/api/runs/{run_id}"), None).await?["data"].clone();
    let steps = admin(
        http,
        url,
        Method::GET,
        &format!("/api/runs/{run_id}/steps?limit=1000"),
        None,
    )
    .await?;
    let step_sum = steps["data"]
        .as_array()
        .ok_or("steps")?
        .iter()
        .filter_map(|s| s["cost_usd"].as_f64())
        .sum();
    let ledger = admin(
        http,
        url,
        Method::GET,
        &format!("/api/runs/{run_id}/ledger"),
        None,
    )
    .await?;
    let verify = admin(
        http,
        url,
        Method::GET,
        &format!("/api/runs/{run_id}/audit/verify"),
        None,
    )
    .await?;
    assert_eq!(verify["data"]["valid"], true, "{run_id}: {verify}");
    Ok((
        run["total_cost_usd"].as_f64().ok_or("total_cost_usd")?,
        step_sum,
        ledger["sum_usd"].as_f64().ok_or("sum_usd")?,
        run["steps_count"].as_u64().ok_or("steps_count")?,
    ))
}

/// What the run's row holds for calls in flight: (reserved nano-dollars, calls).
async fn holds(schema: &Schema, run_id: &str) -> TestResult<(i64, i64)> {
    let row = sqlx::query(&format!(
        "SELECT reserved_nanos, in_flight FROM {}.runs WHERE id = $1",
        schema.name
    ))
    .bind(run_id)
    .fetch_one(&schema.admin)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_keep_one_runs_budget_rate_limit_approval_and_chain() -> TestResult {
    let Some(schema) = crate::pg::schema("scale").await? else {
        return Ok(());
    };
    let kept = three_gateways_keep_promises(&schema).await;
    schema.drop().await?;
    kept
}

async fn three_gateways_keep_promises(schema: &Schema) -> TestResult {
    let mock = MockUpstream::start(MockConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let http = http()?;
    let gateways = three_gateways(&http, dir.path(), schema).await?;
    let urls: Vec<&str> = gateways.iter().map(|g| g.url.as_str()).collect();
    let key = provider_key(&http, urls[0], &mock).await?;

    // One $0.05 cap, 300 calls at once over three gateways.
    let capped = agent(
        &http,
        urls[1],
        &key,
        "capped",
        json!({"budget": {"hard_limit_usd": 0.05, "alert_at": 0.5}}),
    )
    .await?;
    let statuses = burst(&http, &urls, &capped, "scale-budget", &costly(50), 300).await?;
    let admitted = tally(&statuses, 200);
    assert_eq!(admitted + tally(&statuses, 402), 300, "{statuses:?}");
    assert!(
        admitted >= 3,
        "three $0.01254 holds fit a $0.05 cap: {admitted}"
    );
    let (spend, steps, ledger, count) = books(&http, urls[2], "scale-budget").await?;
    assert!(spend <= 0.05, "settled spend {spend} passed the $0.05 cap");
    assert!((spend - steps).abs() < 1e-12 && (spend - ledger).abs() < 1e-12);
    assert_eq!(count, admitted as u64, "every admitted call is one step");
    assert_eq!(
        holds(schema, "scale-budget").await?,
        (0, 0),
        "no hold outlives its call"
    );
    let audit = admin(
        &http,
        urls[0],
        Method::GET,
        "/api/runs/scale-budget/audit?limit=1000",
        None,
    )
    .await?;
    let alerts = audit["data"]
        .as_array()
        .ok_or("audit")?
        .iter()
        .filter(|e| e["kind"] == "budget.alert")
        .count();
    assert_eq!(
        alerts, 1,
        "the run crossed half its cap once, whichever gateway settled it"
    );

    // 60 requests a minute, 300 calls at once over three gateways.
    let rated = agent(
        &http,
        urls[2],
        &key,
        "rated",
        json!({"rate_limits": {"max_requests_per_minute": 60}}),
    )
    .await?;
    let cheap = json!({"model": "gpt-4o-mini", "max_tokens": 16, "messages": user("hi")});
    let statuses = burst(&http, &urls, &rated, "scale-rate", &cheap, 300).await?;
    assert_eq!(tally(&statuses, 200), 60, "{statuses:?}");
    assert_eq!(tally(&statuses, 429), 240);
    books(&http, urls[0], "scale-rate").await?;

    // An agent's hourly cap spans its runs and the gateways: two calls spend ~$0.022, one on the
    // third gateway and one on the first; a third call's $0.0125 estimate would pass $0.03, and
    // the third gateway, which saw only its own $0.011, must know it.
    let hourly = agent(
        &http,
        urls[0],
        &key,
        "hourly",
        json!({"budget": {"agent_hourly_limit_usd": 0.03}}),
    )
    .await?;
    for (i, url) in [urls[2], urls[0], urls[2]].iter().enumerate() {
        let reply = http
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&hourly)
            .header("x-rungate-run-id", format!("scale-hour-{i}"))
            .json(&costly(0))
            .send()
            .await?;
        let status = reply.status().as_u16();
        let body: Value = reply.json().await?;
        if i < 2 {
            assert_eq!(status, 200, "{body}");
        } else {
            assert_eq!(
                (status, &body["error"]["code"]),
                (402, &json!("hourly_cost_exceeded")),
                "{body}"
            );
        }
    }

    // A tool the model may propose once per run: proposed through one gateway, the next
    // proposal through another is over the limit.
    let limited = agent(
        &http,
        urls[1],
        &key,
        "limited",
        json!({"tool_limits": {"get_weather": 1}}),
    )
    .await?;
    let proposing = json!({"model": "gpt-4o-mini", "messages": user("weather?"),
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "mock": {"tool_call": {"name": "get_weather", "arguments": {}}}});
    let mut statuses = Vec::new();
    for url in [urls[0], urls[1]] {
        let reply = http
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&limited)
            .header("x-rungate-run-id", "scale-tools")
            .json(&proposing)
            .send()
            .await?;
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 403],
        "one proposal of get_weather per run, across gateways"
    );

    // Approved on one gateway, retried on all three at once: one retry goes through.
    let gated = agent(
        &http,
        urls[0],
        &key,
        "gated",
        json!({"require_approval": ["execute_code"]}),
    )
    .await?;
    let declaring = json!({"model": "gpt-4o-mini", "messages": user("run it"),
        "tools": [{"type": "function", "function": {"name": "execute_code", "parameters": {"type": "object"}}}]});
    let asked = http
        .post(format!("{}/v1/chat/completions", urls[0]))
        .bearer_auth(&gated)
        .header("x-rungate-run-id", "scale-gate")
        .json(&declaring)
        .send()
        .await?;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await?;
    let gate = asked["approval_requests"][0]["id"]
        .as_str()
        .ok_or("gate id")?;
    admin(
        &http,
        urls[1],
        Method::POST,
        &format!("/api/approval-requests/{gate}/approve"),
        Some(json!({"reason": "looks fine"})),
    )
    .await?;
    let retries = burst(&http, &urls, &gated, "scale-gate", &declaring, 9).await?;
    assert_eq!(
        tally(&retries, 200),
        1,
        "one approval, one retry: {retries:?}"
    );
    assert_eq!(
        tally(&retries, 202),
        8,
        "the others wait for a new approval: {retries:?}"
    );
    let (_, _, _, count) = books(&http, urls[2], "scale-gate").await?;
    assert_eq!(count, 1, "only the approved retry reached the provider");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_mid_load_loses_no_settled_spend_and_its_holds_are_released() -> TestResult
{
    let Some(schema) = crate::pg::schema("kill").await? else {
        return Ok(());
    };
    let kept = killed_gateway(&schema).await;
    schema.drop().await?;
    kept
}

async fn killed_gateway(schema: &Schema) -> TestResult {
    let mock = MockUpstream::start(MockConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let http = http()?;
    let mut gateways = three_gateways(&http, dir.path(), schema).await?;
    let urls: Vec<String> = gateways.iter().map(|g| g.url.clone()).collect();
    let survivors = [urls[0].as_str(), urls[1].as_str()];
    let key = provider_key(&http, &urls[0], &mock).await?;
    let token = agent(
        &http,
        &urls[0],
        &key,
        "steady",
        json!({"budget": {"hard_limit_usd": 5.0}}),
    )
    .await?;

    // Load on all three; four calls to the victim hang upstream when it dies.
    let settled = burst(
        &http,
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        &token,
        "scale-kill",
        &costly(20),
        30,
    )
    .await?;
    assert_eq!(tally(&settled, 200), 30, "{settled:?}");
    let victim = urls[2].clone();
    let hanging: Vec<_> = (0..4)
        .map(|_| {
            let request = http
                .post(format!("{victim}/v1/chat/completions"))
                .bearer_auth(&token)
                .header("x-rungate-run-id", "scale-kill")
                .json(&costly(30_000));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for _ in 0..1000 {
        if holds(schema, "scale-kill").await?.1 == 4 && mock.request_count() == 34 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let during = tokio::spawn({
        let (http, token) = (http.clone(), token.clone());
        let survivors: Vec<String> = survivors.iter().map(|s| (*s).to_owned()).collect();
        async move {
            let urls: Vec<&str> = survivors.iter().map(String::as_str).collect();
            burst(&http, &urls, &token, "scale-kill", &costly(200), 20).await
        }
    });
    // Kill it while the survivors are mid-burst.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gateways[2].kill()?;
    for call in hanging {
        assert!(call.await?.is_err(), "the killed gateway answered nobody");
    }
    let during = during.await??;
    assert_eq!(
        tally(&during, 200),
        20,
        "the others kept serving: {during:?}"
    );
    let (reserved, in_flight) = holds(schema, "scale-kill").await?;
    assert!(
        reserved > 0 && in_flight == 4,
        "the dead gateway's four holds are still on the books right after the kill ({reserved}, {in_flight})"
    );

    // Nobody renews them: within the 2 s TTL (and a sweep) a survivor releases them.
    let mut released = false;
    for _ in 0..300 {
        if holds(schema, "scale-kill").await? == (0, 0) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the dead gateway's holds were never released");
    let audit = admin(
        &http,
        &urls[0],
        Method::GET,
        "/api/runs/scale-kill/audit?limit=1000",
        None,
    )
    .await?;
    let expired: Vec<&Value> = audit["data"]
        .as_array()
        .ok_or("audit")?
        .iter()
        .filter(|e| e["kind"] == "budget.holds_expired")
        .collect();
    assert_eq!(expired.len(), 1, "one release, recorded once");
    assert_eq!(expired[0]["data"]["holds"], 4);

    // No settled spend lost: 50 steps, and spend, steps and ledger agree.
    let after = burst(&http, &survivors, &token, "scale-kill", &costly(0), 4).await?;
    assert_eq!(tally(&after, 200), 4);
    let (spend, steps, ledger, count) = books(&http, &urls[1], "scale-kill").await?;
    assert_eq!(
        count, 54,
        "30 + 20 + 4 settled calls, none of the killed ones"
    );
    assert!((spend - steps).abs() < 1e-12 && (spend - ledger).abs() < 1e-12);
    Ok(())
}
