use serde_json::json;

use crate::harness::{self, Setup, TestResult, user};

fn hi() -> serde_json::Value {
    json!({"model": "gpt-4o-mini", "messages": user("hi")})
}

#[tokio::test]
async fn calls_group_into_explicit_auto_and_new_runs() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("grouping").await?;
    let a = h
        .chat(&token, hi(), &[("x-rungate-run-id", "task-1")])
        .await?;
    let b = h
        .chat(&token, hi(), &[("x-rungate-run-id", "task-1")])
        .await?;
    assert_eq!(
        (a.run_id(), b.run_id()),
        ("task-1".to_owned(), "task-1".to_owned())
    );
    assert_eq!(h.run("task-1").await?["steps_count"], 2);
    let auto1 = h.chat(&token, hi(), &[]).await?.run_id();
    let auto2 = h.chat(&token, hi(), &[]).await?.run_id();
    assert_eq!(
        auto1, auto2,
        "calls without an id share the agent's auto-run"
    );
    assert_ne!(auto1, "task-1");
    let fresh = h
        .chat(&token, hi(), &[("x-rungate-new-run", "true")])
        .await?
        .run_id();
    assert_ne!(fresh, auto1);
    assert_eq!(
        h.chat(&token, hi(), &[]).await?.run_id(),
        fresh,
        "the new run becomes the current auto-run"
    );
    Ok(())
}

#[tokio::test]
async fn a_completed_run_refuses_calls_with_409_and_completing_is_idempotent() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("closer").await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "done-1")])
        .await?;
    let url = format!("{}/v1/runs/done-1/complete", h.url);
    let first = h
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"ended_reason": "finished"}))
        .send()
        .await?;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await?;
    assert_eq!(first["data"]["status"], "completed");
    let again = h.http.post(&url).bearer_auth(&token).send().await?;
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await?;
    assert_eq!(again["data"]["ended_at"], first["data"]["ended_at"]);
    let refused = h
        .chat(&token, hi(), &[("x-rungate-run-id", "done-1")])
        .await?;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["error"]["code"], "run_closed");
    let unknown = h
        .http
        .post(format!("{}/v1/runs/nope/complete", h.url))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    Ok(())
}

#[tokio::test]
async fn another_team_cannot_join_or_read_a_run() -> TestResult {
    let h = harness::start().await?;
    let (_, alice) = h.agent("alice").await?;
    let (_, bob) = h.agent("bob").await?;
    h.chat(&alice, hi(), &[("x-rungate-run-id", "alice-run")])
        .await?;
    let taken = h
        .chat(&bob, hi(), &[("x-rungate-run-id", "alice-run")])
        .await?;
    assert_eq!(taken.status, 409);
    assert_eq!(taken.json()["error"]["code"], "run_id_taken");
    let read = h
        .http
        .get(format!("{}/v1/runs/alice-run", h.url))
        .bearer_auth(&bob)
        .send()
        .await?;
    assert_eq!(read.status(), 404);
    // Agents of one team share the run.
    let (_, lead) = h.agent_with(json!({"name": "lead", "team": "ops"})).await?;
    let (_, helper) = h
        .agent_with(json!({"name": "helper", "team": "ops"}))
        .await?;
    h.chat(&lead, hi(), &[("x-rungate-run-id", "ops-run")])
        .await?;
    let joined = h
        .chat(&helper, hi(), &[("x-rungate-run-id", "ops-run")])
        .await?;
    assert_eq!(joined.status, 200, "{}", joined.text);
    assert_eq!(h.run("ops-run").await?["steps_count"], 2);
    Ok(())
}

#[tokio::test]
async fn tool_steps_are_recorded_and_their_cost_accrues() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("tooler").await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "tools-1")])
        .await?;
    let before = h.run("tools-1").await?["total_cost_usd"]
        .as_f64()
        .unwrap_or(0.0);
    let step = json!({"type": "tool_call", "name": "web_search", "request": {"q": "rust"}, "response": {"hits": 3},
        "tokens": {"input": 0, "output": 0}, "latency_ms": 12, "cost_usd": 0.01, "status": "success"});
    let created = h
        .http
        .post(format!("{}/v1/runs/tools-1/steps", h.url))
        .bearer_auth(&token)
        .json(&step)
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await?;
    assert_eq!(created["data"]["model"], "web_search");
    assert_eq!(created["data"]["type"], "tool_call");
    let after = h.run("tools-1").await?["total_cost_usd"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((after - before - 0.01).abs() < 1e-9, "{before} → {after}");
    let missing = h
        .http
        .post(format!("{}/v1/runs/no-such-run/steps", h.url))
        .bearer_auth(&token)
        .json(&step)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await?;
    assert_eq!(body["error"]["code"], "not_found");
    h.assert_books_balance("tools-1").await
}

#[tokio::test]
async fn force_stopped_runs_refuse_later_calls_with_403() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("stoppable").await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "stop-1")])
        .await?;
    let stopped = h.admin_post("/api/runs/stop-1/stop", json!({})).await?;
    assert_eq!(stopped["data"]["status"], "stopped");
    let refused = h
        .chat(&token, hi(), &[("x-rungate-run-id", "stop-1")])
        .await?;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"]["code"], "run_force_stopped");
    assert_eq!(refused.header("x-rungate-governance"), Some("blocked"));
    Ok(())
}

#[tokio::test]
async fn concurrent_calls_in_one_run_are_all_recorded_and_the_ledger_balances() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("parallel").await?;
    let calls = (0..24).map(|i| {
        let body = json!({"model": "gpt-4o-mini", "stream": i % 2 == 0, "messages": user(&format!("call {i}"))});
        let (h, token) = (&h, &token);
        async move { h.chat(token, body, &[("x-rungate-run-id", "para-1")]).await }
    });
    for reply in futures::future::join_all(calls).await {
        assert_eq!(reply?.status, 200);
    }
    h.eventually("all 24 steps settle", || async {
        Ok(h.run("para-1").await?["steps_count"] == 24)
    })
    .await?;
    h.assert_books_balance("para-1").await
}

#[tokio::test]
async fn runs_survive_a_restart_and_keep_their_steps() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("durable").await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "durable-1")])
        .await?;
    let (mock, dir, openai_key, anthropic_key, policy_id) = h.stop().await?;
    let mut h = harness::boot(mock, dir, "").await?;
    (h.openai_key, h.anthropic_key, h.policy_id) = (openai_key, anthropic_key, policy_id);
    let again = h
        .chat(&token, hi(), &[("x-rungate-run-id", "durable-1")])
        .await?;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(h.run("durable-1").await?["steps_count"], 2);
    h.assert_books_balance("durable-1").await
}

#[tokio::test]
async fn idle_runs_are_completed_by_the_sweeper() -> TestResult {
    let h = harness::start_with(Setup {
        extra_yaml: "idle_timeout_s: 1\nsweep_interval_s: 1\n".into(),
        ..Setup::default()
    })
    .await?;
    let (_, token) = h.agent("idler").await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "idle-1")])
        .await?;
    h.eventually("the idle run is completed", || async {
        let run = h.run("idle-1").await?;
        Ok(run["status"] == "completed" && run["ended_reason"] == "idle_timeout")
    })
    .await?;
    let refused = h
        .chat(&token, hi(), &[("x-rungate-run-id", "idle-1")])
        .await?;
    assert_eq!(refused.status, 409);
    Ok(())
}

#[tokio::test]
async fn the_policy_header_pins_a_new_run_and_is_ignored_with_a_warning_on_an_existing_one()
-> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("chooser").await?;
    let strict = h
        .admin_post(
            "/api/policies",
            json!({"name": "strict", "allowed_models": ["gpt-4o-mini"]}),
        )
        .await?;
    assert_eq!(strict["data"]["version"], 1);
    h.admin_put(
        &format!(
            "/api/policies/{}",
            strict["data"]["id"].as_str().unwrap_or_default()
        ),
        json!({"allowed_models": ["gpt-4o"]}),
    )
    .await?;
    // strict/v1 allows only gpt-4o-mini; the latest (v2) only gpt-4o.
    let v1 = [
        ("x-rungate-run-id", "pol-1"),
        ("x-rungate-policy", "strict/v1"),
    ];
    assert_eq!(
        h.chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("hi")}),
            &v1
        )
        .await?
        .status,
        403
    );
    let ok = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &v1,
        )
        .await?;
    assert_eq!(ok.status, 200);
    assert!(
        ok.header("x-rungate-warning")
            .unwrap_or_default()
            .contains("ignored"),
        "existing run keeps its policy"
    );
    let run = h.run("pol-1").await?;
    assert_eq!(
        (run["policy_id"].clone(), run["policy_version"].clone()),
        (strict["data"]["id"].clone(), json!(1))
    );
    let latest = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("hi")}),
            &[
                ("x-rungate-run-id", "pol-2"),
                ("x-rungate-policy", "strict"),
            ],
        )
        .await?;
    assert_eq!(latest.status, 200, "{}", latest.text);
    let unknown = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("hi")}),
            &[("x-rungate-run-id", "pol-3"), ("x-rungate-policy", "nope")],
        )
        .await?;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"]["code"], "invalid_request");
    Ok(())
}

#[tokio::test]
async fn a_policys_idle_timeout_is_pinned_with_the_run() -> TestResult {
    // The gateway default is 15 minutes; the run's policy says one second.
    let h = harness::start_with(Setup {
        extra_yaml: "sweep_interval_s: 1\n".into(),
        ..Setup::default()
    })
    .await?;
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": "brief", "idle_timeout_s": 1}),
        )
        .await?;
    let (_, token) = h
        .agent_with(json!({"name": "brief", "policy_id": policy["data"]["id"]}))
        .await?;
    h.chat(&token, hi(), &[("x-rungate-run-id", "brief-1")])
        .await?;
    h.eventually("the policy's idle window closes the run", || async {
        Ok(h.run("brief-1").await?["ended_reason"] == "idle_timeout")
    })
    .await
}

#[tokio::test]
async fn runs_can_be_listed_by_what_they_spent_and_a_bad_amount_is_a_400() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("spender").await?;
    // gpt-4o input is $2.50 per million tokens: $0.0025, $0.50 and $1.00.
    for (run, input_tokens) in [("cheap", 1_000), ("even", 200_000), ("dear", 400_000)] {
        let call = json!({"model": "gpt-4o", "messages": user("hi"),
                          "mock": {"usage": {"input_tokens": input_tokens, "output_tokens": 0}}});
        let reply = h.chat(&token, call, &[("x-rungate-run-id", run)]).await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(h.run("even").await?["total_cost_usd"], 0.5);
    let listed = |query: &'static str| {
        let h = &h;
        async move {
            let body = h.admin_get(&format!("/api/runs?{query}")).await?;
            let mut ids: Vec<String> = body["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|run| run["id"].as_str().map(str::to_owned))
                .collect();
            ids.sort();
            assert_eq!(body["total"], ids.len(), "{query}: {body}");
            TestResult::Ok(ids)
        }
    };
    assert_eq!(listed("min_spend_usd=0.5").await?, ["dear", "even"]);
    assert_eq!(listed("max_spend_usd=0.5").await?, ["cheap", "even"]);
    assert_eq!(
        listed("min_spend_usd=0.5&max_spend_usd=0.50").await?,
        ["even"]
    );
    assert_eq!(
        listed("min_spend_usd=0.01&max_spend_usd=0.4").await?,
        [] as [&str; 0]
    );
    assert_eq!(listed("max_spend_usd=").await?, ["cheap", "dear", "even"]);

    for (query, field) in [
        ("min_spend_usd=abc", "min_spend_usd"),
        ("max_spend_usd=-1", "max_spend_usd"),
        ("min_spend_usd=1e3", "min_spend_usd"),
    ] {
        let refused = h
            .http
            .get(format!("{}/api/runs?{query}", h.url))
            .bearer_auth(harness::ADMIN_PASSWORD)
            .send()
            .await?;
        assert_eq!(refused.status(), 400, "{query}");
        let body: serde_json::Value = refused.json().await?;
        assert_eq!(body["error"]["code"], "invalid_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{query}: {body}"
        );
    }
    Ok(())
}
