use serde_json::{Value, json};

use crate::harness::{self, Harness, TestResult, user};

/// An agent whose runs are governed by a policy with `budget`.
async fn budgeted(h: &Harness, name: &str, budget: Value) -> TestResult<String> {
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": format!("{name}-policy"), "budget": budget}),
        )
        .await?;
    let (_, token) = h
        .agent_with(json!({"name": name, "policy_id": policy["data"]["id"]}))
        .await?;
    Ok(token)
}

/// A gpt-4o call with 1000 output tokens and a 3000-character prompt, whose provider counts
/// input tokens exactly as OpenAI's tokenizer does (the mock is told the count). The gateway's
/// first estimate (one token per three characters) is higher; near a cap it counts exactly.
fn costly_call(latency_ms: u64) -> Value {
    json!({"model": "gpt-4o", "max_tokens": 1000, "messages": user(&"x".repeat(3000)),
           "mock": {"usage": {"input_tokens": costly_input_tokens(), "output_tokens": 1000}, "latency_ms": latency_ms}})
}

pub fn costly_input_tokens() -> u64 {
    let body = json!({"model": "gpt-4o", "messages": user(&"x".repeat(3000))}).to_string();
    rungate::providers::tokenizer::count_openai_input("gpt-4o", body.as_bytes()).unwrap_or(750)
}

/// What one costly call really costs: gpt-4o at $2.50 / $10 per million tokens.
pub fn costly_call_usd() -> f64 {
    (costly_input_tokens() as f64 * 2.5 + 1000.0 * 10.0) / 1e6
}

async fn fire(
    h: &Harness,
    token: &str,
    run_id: &str,
    calls: usize,
    body: Value,
) -> TestResult<Vec<harness::Reply>> {
    let headers = [("x-rungate-run-id", run_id)];
    let replies =
        futures::future::join_all((0..calls).map(|_| h.chat(token, body.clone(), &headers))).await;
    replies.into_iter().collect()
}

#[tokio::test]
async fn concurrent_calls_never_spend_past_a_projected_cap() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(&h, "capped", json!({"hard_limit_usd": 0.05})).await?;
    let replies = fire(&h, &token, "cap-1", 200, costly_call(20)).await?;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.status != 200).collect();
    assert!(
        refused
            .iter()
            .all(|r| r.status == 402 && r.json()["error"]["code"] == "budget_exceeded"),
        "every refusal is a 402"
    );
    // $0.05 holds at most 4 concurrent calls, whatever the concurrency.
    assert!((1..=4).contains(&ok), "{ok} calls were admitted at once");
    // Settled calls free what their holds did not use; the room left admits more, one by one,
    // until the next call no longer fits.
    let mut admitted = ok;
    loop {
        let next = h
            .chat(&token, costly_call(0), &[("x-rungate-run-id", "cap-1")])
            .await?;
        if next.status != 200 {
            assert_eq!(next.status, 402);
            break;
        }
        admitted += 1;
    }
    let per_call = costly_call_usd();
    let run = h.run("cap-1").await?;
    let spend = run["total_cost_usd"].as_f64().unwrap_or(f64::MAX);
    assert!(spend <= 0.05, "spent {spend} past the $0.05 cap");
    assert!((spend - admitted as f64 * per_call).abs() < 1e-9, "{spend}");
    assert!(
        spend + per_call > 0.05,
        "a call that fit was refused: spent {spend}"
    );
    let refusal = refused[0].json();
    let context = &refusal["error"]["context"];
    assert_eq!(context["rule"], "stop_on_budget");
    assert_eq!(context["limit_usd"], "0.050000");
    assert_eq!(context["policy_name"], "capped-policy");
    assert!(context["how_to_recover"].is_string() && context["cumulative_spend_usd"].is_string());
    assert_eq!(refusal["error"]["type"], "governance_block");
    assert_eq!(refused[0].header("x-rungate-governance"), Some("blocked"));
    let claude = json!({"model": "claude-sonnet-4", "max_tokens": 1000, "messages": user(&"x".repeat(3000))});
    let anthropic = h
        .messages(&token, claude, &[("x-rungate-run-id", "cap-1")])
        .await?;
    assert_eq!(anthropic.status, 402);
    assert_eq!(
        (
            anthropic.json()["type"].clone(),
            anthropic.json()["error"]["code"].clone()
        ),
        (json!("error"), json!("budget_exceeded"))
    );
    h.assert_books_balance("cap-1").await
}

#[tokio::test]
async fn crossed_enforcement_overshoots_by_at_most_the_calls_in_flight() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(
        &h,
        "crossing",
        json!({"hard_limit_usd": 0.05, "enforcement": "crossed"}),
    )
    .await?;
    // 30 calls held 300 ms upstream: all are in flight before the first one settles.
    let in_flight = 30;
    let replies = fire(&h, &token, "cross-1", in_flight, costly_call(300)).await?;
    assert!(replies.iter().all(|r| r.status == 200));
    let spend = h.run("cross-1").await?["total_cost_usd"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        spend > 0.05,
        "crossed mode does not count calls in flight: {spend}"
    );
    assert!(
        spend <= 0.05 + in_flight as f64 * costly_call_usd() + 1e-9,
        "overshoot beyond the in-flight bound: {spend}"
    );
    // Once the cap is crossed, the next call is refused.
    let after = h
        .chat(&token, costly_call(0), &[("x-rungate-run-id", "cross-1")])
        .await?;
    assert_eq!(after.status, 402);
    h.assert_books_balance("cross-1").await
}

#[tokio::test]
async fn token_caps_refuse_with_402_token_budget_exceeded_in_both_dialects() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(&h, "tokens", json!({"hard_limit_tokens": 3000})).await?;
    let big = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "max_tokens": 5000, "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(big.status, 402);
    assert_eq!(big.json()["error"]["code"], "token_budget_exceeded");
    let small = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "max_tokens": 100, "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(small.status, 200, "{}", small.text);
    assert!(small.header("x-rungate-budget-remaining-tokens").is_some());
    let anthropic = h
        .messages(
            &token,
            json!({"model": "claude-sonnet-4", "max_tokens": 5000, "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(anthropic.status, 402);
    assert_eq!(anthropic.json()["type"], "error");
    assert_eq!(anthropic.json()["error"]["code"], "token_budget_exceeded");
    Ok(())
}

#[tokio::test]
async fn clamping_lowers_max_tokens_to_what_the_budget_can_pay_for() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(
        &h,
        "clamped",
        json!({"hard_limit_usd": 0.006, "clamp_max_tokens": true}),
    )
    .await?;
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "max_tokens": 4000, "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let forwarded = h
        .mock
        .requests()
        .pop()
        .and_then(|r| r.json())
        .ok_or("no body")?;
    let max_tokens = forwarded["max_tokens"].as_u64().unwrap_or(0);
    // $0.006 minus the input estimate buys a little under 600 output tokens at $10/M.
    assert!(
        (16..600).contains(&max_tokens),
        "forwarded max_tokens {max_tokens}"
    );
    Ok(())
}

#[tokio::test]
async fn unpriced_models_are_refused_under_a_usd_cap_unless_allowed_uncounted() -> TestResult {
    let h = harness::start().await?;
    let strict = budgeted(&h, "unpriced", json!({"hard_limit_usd": 1.0})).await?;
    let refused = h
        .chat(
            &strict,
            json!({"model": "llama-3-70b", "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"]["code"], "model_unpriced");
    let lenient = budgeted(
        &h,
        "uncounted",
        json!({"hard_limit_usd": 1.0, "unpriced_models": "allow_uncounted"}),
    )
    .await?;
    let allowed = h
        .chat(
            &lenient,
            json!({"model": "llama-3-70b", "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    Ok(())
}

#[tokio::test]
async fn the_ledger_shows_reservation_settlement_and_release_per_call() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(&h, "ledgered", json!({"hard_limit_usd": 1.0})).await?;
    let reply = h
        .chat(&token, costly_call(0), &[("x-rungate-run-id", "ledger-1")])
        .await?;
    assert_eq!(reply.status, 200);
    let remaining: f64 = reply
        .header("x-rungate-budget-remaining-usd")
        .unwrap_or("0")
        .parse()?;
    assert!(
        (remaining - (1.0 - costly_call_usd())).abs() < 1e-6,
        "{remaining}"
    );
    let ledger = h.admin_get("/api/runs/ledger-1/ledger").await?;
    let kinds: Vec<&str> = ledger["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["release", "reservation", "settlement"]);
    let amount = |kind: &str| {
        ledger["data"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["kind"] == kind))
            .map(|e| e["amount_usd"].as_f64().unwrap_or(0.0))
    };
    assert_eq!(amount("reservation"), amount("release"));
    assert!(
        amount("reservation") >= amount("settlement"),
        "the hold covered the real cost"
    );
    h.assert_books_balance("ledger-1").await
}

#[tokio::test]
async fn an_agents_hourly_cap_spans_its_runs() -> TestResult {
    let h = harness::start().await?;
    let token = budgeted(&h, "hourly", json!({"agent_hourly_limit_usd": 0.03})).await?;
    for run_id in ["hour-a", "hour-b"] {
        let reply = h
            .chat(&token, costly_call(0), &[("x-rungate-run-id", run_id)])
            .await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Two calls spent this hour; a third call's estimate would pass $0.03, in any run.
    let third = h
        .chat(&token, costly_call(0), &[("x-rungate-run-id", "hour-c")])
        .await?;
    assert_eq!(third.status, 402);
    assert_eq!(third.json()["error"]["code"], "hourly_cost_exceeded");
    assert_eq!(
        third.json()["error"]["context"]["agent_spend_last_hour_usd"],
        format!("{:.6}", 2.0 * costly_call_usd())
    );
    Ok(())
}

#[tokio::test]
async fn budget_alerts_refusals_and_policy_drift_are_recorded_once_in_the_audit() -> TestResult {
    let h = harness::start().await?;
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": "watched", "budget": {"hard_limit_usd": 0.03, "alert_at": 0.5}}),
        )
        .await?;
    let policy_id = policy["data"]["id"].as_str().unwrap_or_default().to_owned();
    let (_, token) = h
        .agent_with(json!({"name": "watched", "policy_id": policy_id}))
        .await?;
    for _ in 0..2 {
        assert_eq!(
            h.chat(&token, costly_call(0), &[("x-rungate-run-id", "watch-1")])
                .await?
                .status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            h.chat(&token, costly_call(0), &[("x-rungate-run-id", "watch-1")])
                .await?
                .status,
            402
        );
    }
    h.admin_put(
        &format!("/api/policies/{policy_id}"),
        json!({"budget": {"hard_limit_usd": 1.0}}),
    )
    .await?;
    let audit = h.admin_get("/api/runs/watch-1/audit").await?;
    let kinds: Vec<String> = audit["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(count("budget.alert"), 1, "{kinds:?}");
    assert_eq!(count("run.blocked"), 2, "{kinds:?}");
    assert_eq!(count("budget.exceeded"), 1, "{kinds:?}");
    assert_eq!(count("policy.drift"), 1, "{kinds:?}");
    let drift = audit["data"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["kind"] == "policy.drift"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            drift["data"]["pinned_version"].clone(),
            drift["data"]["current_version"].clone()
        ),
        (json!(1), json!(2))
    );
    h.assert_books_balance("watch-1").await
}

#[tokio::test]
async fn near_the_cap_openai_calls_are_judged_on_their_exact_token_count() -> TestResult {
    let h = harness::start().await?;
    // Between the call's real cost (~$0.01096) and its first, conservative estimate ($0.01254).
    let token = budgeted(&h, "exact", json!({"hard_limit_usd": 0.012})).await?;
    assert!(costly_call_usd() < 0.012);
    let reply = h
        .chat(&token, costly_call(0), &[("x-rungate-run-id", "exact-1")])
        .await?;
    assert_eq!(
        reply.status, 200,
        "the tokenizer's count admits the call: {}",
        reply.text
    );
    let spend = h.run("exact-1").await?["total_cost_usd"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(spend <= 0.012, "{spend}");
    let again = h
        .chat(&token, costly_call(0), &[("x-rungate-run-id", "exact-1")])
        .await?;
    assert_eq!(again.status, 402);
    Ok(())
}
