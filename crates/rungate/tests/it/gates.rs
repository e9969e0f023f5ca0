//! Approval gates end to end (SPEC §6): each trigger pauses the run with a 202, an approver
//! decides through the admin API, and the agent's identical retry gets exactly one pass.

use serde_json::{Value, json};

use crate::harness::{self, Harness, Reply, TestResult, user};

const MODELS: &[&str] = &["gpt-4o-mini", "gpt-4o"];

pub(crate) async fn gated_agent(h: &Harness, name: &str, rules: Value) -> TestResult<String> {
    let mut policy = rules;
    policy["name"] = json!(format!("{name}-policy"));
    policy["allowed_models"] = json!(MODELS);
    let created = h.admin_post("/api/policies", policy).await?;
    let (_, token) = h
        .agent_with(json!({"name": name, "policy_id": created["data"]["id"]}))
        .await?;
    Ok(token)
}

pub(crate) fn declaring(tool: &str, text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": user(text),
           "tools": [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}]})
}

/// A request whose answer (scripted in the mock) proposes `tool` with `args`.
fn proposing(tool: &str, args: Value) -> Value {
    json!({"model": "gpt-4o-mini", "messages": user("refund the order"),
           "tools": [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}],
           "mock": {"tool_call": {"name": tool, "arguments": args}}})
}

pub(crate) fn gate_id(reply: &Reply) -> String {
    reply.json()["approval_requests"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn decide(h: &Harness, id: &str, verb: &str, reason: Option<&str>) -> TestResult<Value> {
    let body = reason.map_or(json!({}), |r| json!({"reason": r}));
    Ok(
        h.admin_post(&format!("/api/approval-requests/{id}/{verb}"), body)
            .await?["data"]
            .clone(),
    )
}

pub(crate) async fn audit_kinds(h: &Harness, run_id: &str) -> TestResult<Vec<(String, String)>> {
    let audit = h.admin_get(&format!("/api/runs/{run_id}/audit")).await?;
    Ok(audit["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[tokio::test]
async fn a_declared_tool_waits_for_approval_then_exactly_the_reviewed_request_goes_through()
-> TestResult {
    let h = harness::start().await?;
    let token = gated_agent(&h, "coder", json!({"require_approval": ["execute_code"]})).await?;
    let run = [("x-rungate-run-id", "gate-declared")];
    let asked = h
        .chat(&token, declaring("execute_code", "run it"), &run)
        .await?;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let body = asked.json();
    assert_eq!(body["status"], "awaiting_approval");
    assert_eq!(body["run_id"], "gate-declared");
    assert_eq!(body["approval_requests"][0]["tool"], "execute_code");
    assert_eq!(body["context"]["rule"], "require_approval");
    assert_eq!(body["context"]["proposed_action"]["tool"], "execute_code");
    assert!(body["context"]["expires_at"].is_string());
    assert_eq!(asked.header("retry-after"), Some("5"));
    assert_eq!(
        asked.header("x-rungate-governance"),
        Some("awaiting_approval")
    );
    assert_eq!(
        h.mock.request_count(),
        0,
        "nothing is forwarded while pending"
    );
    let id = gate_id(&asked);

    // Pending: the retry and every other call of the run wait behind the same gate.
    let again = h
        .chat(&token, declaring("execute_code", "run it"), &run)
        .await?;
    assert_eq!((again.status, gate_id(&again)), (202, id.clone()));
    let other = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hello")}),
            &run,
        )
        .await?;
    assert_eq!((other.status, gate_id(&other)), (202, id.clone()));

    // An agent token is no approver.
    let by_agent = h
        .http
        .post(format!("{}/api/approval-requests/{id}/approve", h.url))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(by_agent.status(), 401);

    let approved = decide(&h, &id, "approve", Some("looks safe")).await?;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], "admin:dashboard");

    // A changed request is not covered by the approval: it asks anew.
    let changed = h
        .chat(&token, declaring("execute_code", "run it twice"), &run)
        .await?;
    assert_eq!(changed.status, 202);
    assert_ne!(gate_id(&changed), id);

    let passed = h
        .chat(&token, declaring("execute_code", "run it"), &run)
        .await?;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert_eq!(
        h.mock.request_count(),
        1,
        "the approved retry was forwarded once"
    );

    // The approval is spent: the same request again needs a new one.
    let reused = h
        .chat(&token, declaring("execute_code", "run it"), &run)
        .await?;
    assert_eq!(reused.status, 202);
    assert_ne!(gate_id(&reused), id);
    assert_eq!(h.mock.request_count(), 1);

    let kinds = audit_kinds(&h, "gate-declared").await?;
    assert!(
        kinds
            .iter()
            .any(|(k, actor)| k == "approval.pending" && actor.starts_with("agent:")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("approval.approved".into(), "admin:dashboard".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|(k, _)| k == "approval.consumed"),
        "{kinds:?}"
    );
    h.assert_books_balance("gate-declared").await?;
    Ok(())
}

#[tokio::test]
async fn a_rejected_request_gets_403_with_the_reason() -> TestResult {
    let h = harness::start().await?;
    let token = gated_agent(
        &h,
        "rejected",
        json!({"require_approval": ["execute_code"]}),
    )
    .await?;
    let run = [("x-rungate-run-id", "gate-rejected")];
    let asked = h
        .chat(&token, declaring("execute_code", "rm -rf"), &run)
        .await?;
    let id = gate_id(&asked);
    let rejected = decide(&h, &id, "reject", Some("too dangerous")).await?;
    assert_eq!(rejected["status"], "rejected");
    let retry = h
        .chat(&token, declaring("execute_code", "rm -rf"), &run)
        .await?;
    assert_eq!(retry.status, 403);
    assert_eq!(retry.json()["error"]["code"], "approval_rejected");
    assert!(
        retry.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too dangerous")
    );
    assert_eq!(h.mock.request_count(), 0);
    // A decided request cannot be decided again.
    let twice = h
        .http
        .post(format!("{}/api/approval-requests/{id}/approve", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(twice.status(), 409);
    let kinds = audit_kinds(&h, "gate-rejected").await?;
    assert!(kinds.contains(&("approval.rejected".into(), "admin:dashboard".into())));
    Ok(())
}

#[tokio::test]
async fn a_proposed_action_is_held_charged_once_and_returned_after_approval() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"gates": [{"id": "refund:over-$500", "tool": "issue_refund",
                                  "when": "args.amount_usd > 500", "approver_channel": "slack://#customer-ops"}]});
    let token = gated_agent(&h, "support", rules).await?;
    let run = [("x-rungate-run-id", "gate-proposed")];

    let small = h
        .chat(
            &token,
            proposing("issue_refund", json!({"amount_usd": 20})),
            &run,
        )
        .await?;
    assert_eq!(
        small.status, 200,
        "a refund under the threshold needs no approval"
    );

    let big = proposing("issue_refund", json!({"amount_usd": 750}));
    let asked = h.chat(&token, big.clone(), &run).await?;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let body = asked.json();
    assert_eq!(body["context"]["rule"], "refund:over-$500");
    assert_eq!(
        body["context"]["proposed_action"]["args"]["amount_usd"],
        750
    );
    assert_eq!(body["context"]["approver_channel"], "slack://#customer-ops");
    assert_eq!(h.mock.request_count(), 2);
    let spend_when_held = h.run("gate-proposed").await?["total_cost_usd"].clone();
    let steps = h.steps("gate-proposed").await?;
    assert_eq!(steps.len(), 2, "the held call was charged as a step");

    decide(&h, &gate_id(&asked), "approve", None).await?;
    let passed = h.chat(&token, big.clone(), &run).await?;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let answer = passed.json();
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "issue_refund"
    );
    assert_eq!(
        h.mock.request_count(),
        2,
        "the held answer, not a second model call"
    );
    assert_eq!(
        h.run("gate-proposed").await?["total_cost_usd"],
        spend_when_held
    );
    assert_eq!(h.steps("gate-proposed").await?.len(), 2, "charged once");

    let again = h.chat(&token, big, &run).await?;
    assert_eq!(again.status, 202, "the approval was used once");
    assert_eq!(h.mock.request_count(), 2);
    h.assert_books_balance("gate-proposed").await?;
    Ok(())
}

#[tokio::test]
async fn a_streamed_proposal_is_held_then_replayed_as_the_stream_after_approval() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"gates": [{"id": "refund", "tool": "issue_refund", "when": "args.amount_usd > 500"}]});
    let token = gated_agent(&h, "streamer", rules).await?;
    let run = [("x-rungate-run-id", "gate-stream")];
    let mut small = proposing("issue_refund", json!({"amount_usd": 50}));
    small["stream"] = json!(true);
    let passed = h.chat(&token, small, &run).await?;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert!(
        passed
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    assert!(passed.text.contains("data: [DONE]") && passed.rungate_trailer().is_some());

    let mut big = proposing("issue_refund", json!({"amount_usd": 900}));
    big["stream"] = json!(true);
    let asked = h.chat(&token, big.clone(), &run).await?;
    assert_eq!(
        asked.status, 202,
        "the proposal never reached the client: {}",
        asked.text
    );
    assert_eq!(
        asked.json()["context"]["proposed_action"]["args"]["amount_usd"],
        900
    );
    assert_eq!(
        h.steps("gate-stream").await?.len(),
        2,
        "the held stream was charged"
    );
    decide(&h, &gate_id(&asked), "approve", None).await?;
    let replayed = h.chat(&token, big, &run).await?;
    assert_eq!(replayed.status, 200);
    assert!(
        replayed
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    assert!(replayed.text.contains("issue_refund") && replayed.text.contains("data: [DONE]"));
    assert_eq!(h.mock.request_count(), 2, "replayed, not asked again");
    assert_eq!(h.steps("gate-stream").await?.len(), 2, "charged once");
    h.assert_books_balance("gate-stream").await?;
    Ok(())
}

#[tokio::test]
async fn an_undecided_gate_expires_and_its_retry_gets_403() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"gates": [{"id": "refund", "tool": "issue_refund", "expires_in_s": 1}]});
    let token = gated_agent(&h, "slowpoke", rules).await?;
    let run = [("x-rungate-run-id", "gate-expiry")];
    let request = proposing("issue_refund", json!({"amount_usd": 1}));
    let asked = h.chat(&token, request.clone(), &run).await?;
    assert_eq!(asked.status, 202);
    let id = gate_id(&asked);
    h.eventually("the gate expires", || async {
        let gate = h.admin_get(&format!("/api/approval-requests/{id}")).await?;
        Ok(gate["data"]["status"] == "expired")
    })
    .await?;
    let retry = h.chat(&token, request, &run).await?;
    assert_eq!(retry.status, 403);
    assert_eq!(retry.json()["error"]["code"], "approval_expired");
    let kinds = audit_kinds(&h, "gate-expiry").await?;
    assert!(kinds.contains(&("approval.expired".into(), "system:expiry".into())));
    h.assert_books_balance("gate-expiry").await?;
    Ok(())
}

#[tokio::test]
async fn a_reported_tool_step_waits_for_approval() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"gates": [{"id": "big-refund", "tool": "issue_refund", "when": "args.amount_usd > 500"}]});
    let token = gated_agent(&h, "reporter", rules).await?;
    let run = [("x-rungate-run-id", "gate-reported")];
    assert_eq!(
        h.chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &run
        )
        .await?
        .status,
        200
    );
    let step = json!({"type": "tool_call", "name": "issue_refund", "request": {"amount_usd": 900}});
    let report = |body: Value| {
        h.post_raw(
            "/v1/runs/gate-reported/steps",
            &token,
            body.to_string().into_bytes(),
            &[],
        )
    };
    let asked = report(step.clone()).await?;
    assert_eq!(asked.status, 202, "{}", asked.text);
    decide(&h, &gate_id(&asked), "approve", None).await?;
    let recorded = report(step.clone()).await?;
    assert_eq!(recorded.status, 201, "{}", recorded.text);
    assert_eq!(h.steps("gate-reported").await?.len(), 2);
    let small =
        report(json!({"type": "tool_call", "name": "issue_refund", "request": {"amount_usd": 5}}))
            .await?;
    assert_eq!(small.status, 201);
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_retries_at_the_moment_of_approval_forward_exactly_one() -> TestResult {
    let h = harness::start().await?;
    let token = gated_agent(&h, "racer", json!({"require_approval": ["execute_code"]})).await?;
    let run = [("x-rungate-run-id", "gate-race")];
    let request = declaring("execute_code", "deploy");
    let asked = h.chat(&token, request.clone(), &run).await?;
    let id = gate_id(&asked);
    let wave = || {
        let retries = (0..50).map(|_| h.chat(&token, request.clone(), &run));
        futures::future::join_all(retries)
    };
    let (approval, first) = tokio::join!(decide(&h, &id, "approve", None), wave());
    approval?;
    let second = wave().await;
    let mut passed = 0;
    for reply in first.into_iter().chain(second) {
        let reply = reply?;
        match reply.status {
            200 => passed += 1,
            202 => {}
            other => return Err(format!("unexpected {other}: {}", reply.text).into()),
        }
    }
    assert_eq!(passed, 1, "one approval lets one retry through");
    assert_eq!(h.mock.request_count(), 1, "exactly one call was forwarded");
    h.assert_books_balance("gate-race").await?;
    Ok(())
}

#[tokio::test]
async fn a_gate_condition_that_does_not_parse_is_refused_with_its_position() -> TestResult {
    let h = harness::start().await?;
    let response = h
        .http
        .post(format!("{}/api/policies", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({"name": "bad-cel", "gates": [{"id": "g", "tool": "t", "when": "args.amount >"}]}))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("gates[0].when"), "{message}");
    assert!(message.contains("line 1, column"), "{message}");
    Ok(())
}

#[tokio::test]
async fn the_sweeper_expires_gates_and_never_closes_a_run_waiting_for_a_person() -> TestResult {
    let h = harness::start_with(harness::Setup {
        extra_yaml: "sweep_interval_s: 1\n".into(),
        ..harness::Setup::default()
    })
    .await?;
    let rules = json!({"idle_timeout_s": 1, "require_approval": ["execute_code"],
                       "gates": [{"id": "refund", "tool": "issue_refund", "expires_in_s": 1}]});
    let token = gated_agent(&h, "patient", rules).await?;
    let waiting = h
        .chat(
            &token,
            declaring("execute_code", "run"),
            &[("x-rungate-run-id", "gate-waiting")],
        )
        .await?;
    assert_eq!(waiting.status, 202);
    let expiring = h
        .chat(
            &token,
            proposing("issue_refund", json!({})),
            &[("x-rungate-run-id", "gate-expiring")],
        )
        .await?;
    assert_eq!(expiring.status, 202);
    let idle = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[("x-rungate-run-id", "gate-idle")],
        )
        .await?;
    assert_eq!(idle.status, 200);
    // Nobody reads the gates: only the sweeper can record the expiry.
    h.eventually("the sweeper expires the one-second gate", || async {
        Ok(audit_kinds(&h, "gate-expiring")
            .await?
            .contains(&("approval.expired".into(), "system:expiry".into())))
    })
    .await?;
    h.eventually("the run without a gate is completed as idle", || async {
        Ok(h.run("gate-idle").await?["status"] == "completed")
    })
    .await?;
    assert_eq!(
        h.run("gate-waiting").await?["status"],
        "running",
        "paused, not idle"
    );
    decide(&h, &gate_id(&waiting), "approve", None).await?;
    let passed = h
        .chat(
            &token,
            declaring("execute_code", "run"),
            &[("x-rungate-run-id", "gate-waiting")],
        )
        .await?;
    assert_eq!(passed.status, 200, "{}", passed.text);
    Ok(())
}

/// A loopback receiver for approver notifications: records every POST as (path, body); the
/// first POST to `/flaky` is answered 500, so the sender's retry is exercised.
async fn receiver() -> TestResult<(
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
)> {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let store = store.clone();
        async move {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut seen = store.lock().unwrap();
            let first_flaky =
                uri.path() == "/flaky" && !seen.iter().any(|(p, _)| p == "/flaky-failed");
            if first_flaky {
                seen.push(("/flaky-failed".into(), value));
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            }
            seen.push((uri.path().to_owned(), value));
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

#[tokio::test]
async fn approver_channels_hear_about_pending_and_decided_gates() -> TestResult {
    let (url, seen) = receiver().await?;
    let h = harness::start_with(harness::Setup {
        extra_yaml: format!("approver_channels:\n  \"slack://#ops\": {url}/slack\n"),
        ..harness::Setup::default()
    })
    .await?;
    let rules = json!({"gates": [
        {"id": "refund-slack", "tool": "issue_refund", "approver_channel": "slack://#ops"},
        {"id": "refund-hook", "tool": "issue_refund", "approver_channel": format!("{url}/flaky")}]});
    let token = gated_agent(&h, "notifier", rules).await?;
    let asked = h
        .chat(
            &token,
            proposing("issue_refund", json!({"amount_usd": 42})),
            &[("x-rungate-run-id", "gate-notify")],
        )
        .await?;
    assert_eq!(asked.status, 202);
    let ids: Vec<String> = asked.json()["approval_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2, "one request per matching rule");
    let posted = |path: &'static str, event: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move {
                Ok(seen.lock().unwrap().iter().any(|(p, b)| {
                    p == path
                        && (b["event"] == event
                            || b["text"].as_str().is_some_and(|t| t.contains(event)))
                }))
            }
        }
    };
    h.eventually(
        "Slack hears of the pending gate",
        posted("/slack", "Approval needed"),
    )
    .await?;
    h.eventually(
        "the webhook gets the envelope after one retry",
        posted("/flaky", "approval.pending"),
    )
    .await?;
    let slack = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == "/slack")
        .cloned()
        .ok_or("slack")?;
    let text = slack.1["blocks"].to_string();
    assert!(
        text.contains("issue_refund")
            && text.contains("42")
            && text.contains("rungate approvals approve"),
        "{text}"
    );
    let envelope = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == "/flaky")
        .cloned()
        .ok_or("hook")?
        .1;
    assert!(
        envelope["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    assert!(envelope["delivered_at"].is_string());
    assert_eq!(
        envelope["data"]["proposed_action"]["args"]["amount_usd"],
        42
    );
    let hooked = envelope["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ids.contains(&hooked));

    decide(&h, &hooked, "reject", Some("no refunds today")).await?;
    h.eventually(
        "the webhook hears of the rejection",
        posted("/flaky", "approval.rejected"),
    )
    .await?;
    let rejected = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(p, b)| p == "/flaky" && b["event"] == "approval.rejected")
        .cloned()
        .ok_or("rejection")?
        .1;
    assert_eq!(rejected["data"]["reason"], "no refunds today");
    assert_eq!(rejected["data"]["decided_by"], "admin:dashboard");
    Ok(())
}

#[tokio::test]
async fn a_run_past_its_cap_pauses_until_an_approver_raises_the_cap() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"budget": {"hard_limit_usd": 0.0004, "on_exceed": "approval"}});
    let token = gated_agent(&h, "spender", rules).await?;
    let run = [("x-rungate-run-id", "gate-budget")];
    let call = |text: &str| {
        json!({"model": "gpt-4o-mini", "messages": user(text), "max_tokens": 100,
               "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}})
    };
    assert_eq!(h.chat(&token, call("spend"), &run).await?.status, 200);
    let paused = h.chat(&token, call("over"), &run).await?;
    assert_eq!(
        paused.status, 202,
        "on_exceed: approval pauses instead of 402: {}",
        paused.text
    );
    let context = paused.json()["context"].clone();
    assert_eq!(context["rule"], "budget.on_exceed");
    assert_eq!(context["trigger"], "budget");
    let needed = context["proposed_action"]["args"]["needed_limit_usd"]
        .as_f64()
        .ok_or("needed")?;
    assert!(needed > 0.0004, "{context}");
    let other = h.chat(&token, call("something else"), &run).await?;
    assert_eq!(
        (other.status, gate_id(&other)),
        (202, gate_id(&paused)),
        "the run is paused"
    );

    let id = gate_id(&paused);
    let too_low = h
        .http
        .post(format!("{}/api/approval-requests/{id}/approve", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({"hard_limit_usd": 0.0001}))
        .send()
        .await?;
    assert_eq!(too_low.status(), 400, "a raise must raise");
    decide(&h, &id, "approve", Some("customer is worth it")).await?;
    let resumed = h.chat(&token, call("over"), &run).await?;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    let limit = h.run("gate-budget").await?["budget_limit_usd"]
        .as_f64()
        .ok_or("limit")?;
    assert!(
        (limit - needed).abs() < 1e-12,
        "the cap was raised to what the call needed: {limit} vs {needed}"
    );
    let audit = h.admin_get("/api/runs/gate-budget/audit").await?;
    let approved = audit["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["kind"] == "approval.approved")
        .ok_or("approval event")?;
    assert_eq!(approved["data"]["raised_limit_usd"].as_f64(), Some(needed));
    h.assert_books_balance("gate-budget").await?;
    Ok(())
}

#[tokio::test]
async fn anthropic_proposals_are_held_too_streamed_or_not() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"allowed_models": ["claude-sonnet-4*"],
                       "gates": [{"id": "refund", "tool": "issue_refund", "when": "args.amount_usd > 500"}]});
    let mut policy = rules;
    policy["name"] = json!("claude-gated");
    let created = h.admin_post("/api/policies", policy).await?;
    let (_, token) = h
        .agent_with(json!({"name": "claude-agent", "policy_id": created["data"]["id"]}))
        .await?;
    let run = [("x-rungate-run-id", "gate-claude")];
    for stream in [false, true] {
        let request = json!({"model": "claude-sonnet-4", "max_tokens": 50, "stream": stream,
            "messages": user(&format!("refund, stream={stream}")),
            "tools": [{"name": "issue_refund", "input_schema": {"type": "object"}}],
            "mock": {"tool_call": {"name": "issue_refund", "arguments": {"amount_usd": 800}}}});
        let asked = h.messages(&token, request.clone(), &run).await?;
        assert_eq!(asked.status, 202, "stream={stream}: {}", asked.text);
        assert_eq!(
            asked.json()["context"]["proposed_action"]["args"]["amount_usd"],
            800
        );
        decide(&h, &gate_id(&asked), "approve", None).await?;
        let passed = h.messages(&token, request, &run).await?;
        assert_eq!(passed.status, 200, "stream={stream}: {}", passed.text);
        assert!(passed.text.contains("issue_refund"));
        if stream {
            assert!(passed.text.contains("message_stop"));
        }
    }
    assert_eq!(
        h.mock.request_count(),
        2,
        "each held answer was replayed, not asked again"
    );
    h.assert_books_balance("gate-claude").await?;
    Ok(())
}

#[tokio::test]
async fn a_budget_approval_waives_no_tool_rule() -> TestResult {
    let h = harness::start().await?;
    let rules = json!({"require_approval": ["execute_code"],
                       "budget": {"hard_limit_usd": 0.0004, "on_exceed": "approval"}});
    let token = gated_agent(&h, "two-gates", rules).await?;
    let run = [("x-rungate-run-id", "gate-two")];
    let spend = json!({"model": "gpt-4o-mini", "messages": user("spend"), "max_tokens": 100,
                       "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}});
    assert_eq!(h.chat(&token, spend, &run).await?.status, 200);
    let mut request = declaring("execute_code", "run it");
    request["max_tokens"] = json!(100);
    let budget = h.chat(&token, request.clone(), &run).await?;
    assert_eq!(
        budget.json()["context"]["rule"],
        "budget.on_exceed",
        "{}",
        budget.text
    );
    decide(&h, &gate_id(&budget), "approve", None).await?;
    let tool = h.chat(&token, request.clone(), &run).await?;
    assert_eq!(
        tool.status, 202,
        "the budget approval is not a tool approval"
    );
    assert_eq!(tool.json()["context"]["rule"], "require_approval");
    assert_eq!(h.mock.request_count(), 1);
    decide(&h, &gate_id(&tool), "approve", None).await?;
    assert_eq!(h.chat(&token, request, &run).await?.status, 200);
    assert_eq!(h.mock.request_count(), 2);
    Ok(())
}
