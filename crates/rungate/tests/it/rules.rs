use serde_json::{Value, json};

use crate::harness::{self, Harness, TestResult, user};

async fn governed(h: &Harness, name: &str, policy: Value) -> TestResult<String> {
    let mut policy = policy;
    policy["name"] = json!(format!("{name}-policy"));
    let created = h.admin_post("/api/policies", policy).await?;
    let (_, token) = h
        .agent_with(json!({"name": name, "policy_id": created["data"]["id"]}))
        .await?;
    Ok(token)
}

fn chat_with_tool(tool: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": user("hi"),
           "tools": [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}]})
}

#[tokio::test]
async fn blocked_tools_are_refused_when_declared_or_reported() -> TestResult {
    let h = harness::start().await?;
    let token = governed(&h, "careful", json!({"blocked_tools": ["delete_database"]})).await?;
    let declared = h
        .chat(
            &token,
            chat_with_tool("delete_database"),
            &[("x-rungate-run-id", "tools-b")],
        )
        .await?;
    assert_eq!(declared.status, 403);
    assert_eq!(declared.json()["error"]["code"], "tool_blocked");
    assert_eq!(
        declared.json()["error"]["context"]["tool"],
        "delete_database"
    );
    let anthropic = json!({"model": "claude-sonnet-4", "max_tokens": 10, "messages": user("hi"),
        "tools": [{"name": "delete_database", "input_schema": {"type": "object"}}]});
    let refused = h
        .messages(&token, anthropic, &[("x-rungate-run-id", "tools-b")])
        .await?;
    assert_eq!(
        (refused.status, refused.json()["type"].clone()),
        (403, json!("error"))
    );
    assert_eq!(
        h.chat(
            &token,
            chat_with_tool("search"),
            &[("x-rungate-run-id", "tools-b")]
        )
        .await?
        .status,
        200
    );
    let reported = h
        .http
        .post(format!("{}/v1/runs/tools-b/steps", h.url))
        .bearer_auth(&token)
        .json(&json!({"type": "tool_call", "name": "delete_database"}))
        .send()
        .await?;
    assert_eq!(reported.status(), 403);
    let body: Value = reported.json().await?;
    assert_eq!(body["error"]["code"], "tool_blocked");
    assert_eq!(
        h.mock.request_count(),
        1,
        "only the allowed call reached the provider"
    );
    Ok(())
}

#[tokio::test]
async fn max_steps_stops_a_runaway_run_in_both_dialects() -> TestResult {
    let h = harness::start().await?;
    let token = governed(&h, "bounded", json!({"max_steps": 2})).await?;
    let hi = json!({"model": "gpt-4o-mini", "messages": user("hi")});
    assert_eq!(
        h.chat(&token, hi.clone(), &[("x-rungate-run-id", "loop-1")])
            .await?
            .status,
        200
    );
    let claude = json!({"model": "claude-sonnet-4", "max_tokens": 10, "messages": user("hi")});
    assert_eq!(
        h.messages(&token, claude.clone(), &[("x-rungate-run-id", "loop-1")])
            .await?
            .status,
        200
    );
    let third = h
        .chat(&token, hi, &[("x-rungate-run-id", "loop-1")])
        .await?;
    assert_eq!(third.status, 403);
    assert_eq!(third.json()["error"]["code"], "runaway_prevention");
    let fourth = h
        .messages(&token, claude, &[("x-rungate-run-id", "loop-1")])
        .await?;
    assert_eq!(fourth.json()["error"]["code"], "runaway_prevention");
    let step = h
        .http
        .post(format!("{}/v1/runs/loop-1/steps", h.url))
        .bearer_auth(&token)
        .json(&json!({"type": "tool_call", "name": "search"}))
        .send()
        .await?;
    assert_eq!(step.status(), 403);
    assert_eq!(h.run("loop-1").await?["steps_count"], 2);
    Ok(())
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_run_and_per_agent() -> TestResult {
    let h = harness::start().await?;
    let token = governed(
        &h,
        "throttled",
        json!({"rate_limits": {"max_requests_per_minute": 2}}),
    )
    .await?;
    let hi = json!({"model": "gpt-4o-mini", "messages": user("hi")});
    assert_eq!(
        h.chat(&token, hi.clone(), &[("x-rungate-run-id", "rate-1")])
            .await?
            .status,
        200
    );
    assert_eq!(
        h.chat(&token, hi.clone(), &[("x-rungate-run-id", "rate-1")])
            .await?
            .status,
        200
    );
    let third = h
        .chat(&token, hi.clone(), &[("x-rungate-run-id", "rate-1")])
        .await?;
    assert_eq!(third.status, 429);
    assert_eq!(third.json()["error"]["code"], "rate_limited");
    let wait: u64 = third
        .header("retry-after")
        .ok_or("no Retry-After")?
        .parse()?;
    assert!((1..=60).contains(&wait), "{wait}");
    // The agent's own window is shared by its runs: a fresh run is throttled too.
    let other_run = h
        .chat(&token, hi, &[("x-rungate-run-id", "rate-2")])
        .await?;
    assert_eq!(other_run.status, 429);
    assert_eq!(other_run.json()["error"]["context"]["scope"], "agent");
    Ok(())
}

#[tokio::test]
async fn tool_limits_cap_how_often_a_tool_is_reported_in_a_run() -> TestResult {
    let h = harness::start().await?;
    let token = governed(&h, "limited", json!({"tool_limits": {"send_email": 2}})).await?;
    h.chat(
        &token,
        json!({"model": "gpt-4o-mini", "messages": user("hi")}),
        &[("x-rungate-run-id", "mail-1")],
    )
    .await?;
    let report = |name: &str| {
        h.http
            .post(format!("{}/v1/runs/mail-1/steps", h.url))
            .bearer_auth(&token)
            .json(&json!({"type": "tool_call", "name": name}))
            .send()
    };
    assert_eq!(report("send_email").await?.status(), 201);
    assert_eq!(report("send_email").await?.status(), 201);
    let third = report("send_email").await?;
    assert_eq!(third.status(), 403);
    let body: Value = third.json().await?;
    assert_eq!(body["error"]["code"], "tool_limit_reached");
    assert_eq!(
        report("search").await?.status(),
        201,
        "other tools are not limited"
    );
    Ok(())
}

#[tokio::test]
async fn tool_calls_the_model_proposes_meet_blocked_tools_and_tool_limits() -> TestResult {
    let h = harness::start().await?;
    let token = governed(
        &h,
        "proposals",
        json!({"blocked_tools": ["send_money"], "tool_limits": {"get_weather": 1}}),
    )
    .await?;
    let proposing = |tool: &str| {
        let mut body = chat_with_tool("get_weather");
        body["mock"] = json!({"tool_call": {"name": tool, "arguments": {}}});
        body
    };
    let blocked = h
        .chat(
            &token,
            proposing("send_money"),
            &[("x-rungate-run-id", "prop-1")],
        )
        .await?;
    assert_eq!(blocked.status, 403, "{}", blocked.text);
    assert_eq!(blocked.json()["error"]["code"], "tool_blocked");
    assert!(
        !blocked.text.contains("send_money\",\"arguments"),
        "the proposal itself is withheld"
    );
    let steps = h.steps("prop-1").await?;
    assert_eq!(steps[0]["status"], "blocked");
    assert!(
        steps[0]["cost_usd"].as_f64().unwrap_or(0.0) > 0.0,
        "the provider's answer is still charged"
    );
    assert_eq!(
        h.chat(
            &token,
            proposing("get_weather"),
            &[("x-rungate-run-id", "prop-1")]
        )
        .await?
        .status,
        200
    );
    let over = h
        .chat(
            &token,
            proposing("get_weather"),
            &[("x-rungate-run-id", "prop-1")],
        )
        .await?;
    assert_eq!(over.status, 403);
    assert_eq!(over.json()["error"]["code"], "tool_limit_reached");
    let reported = h
        .http
        .post(format!("{}/v1/runs/prop-1/steps", h.url))
        .bearer_auth(&token)
        .json(&json!({"type": "tool_call", "name": "get_weather"}))
        .send()
        .await?;
    assert_eq!(
        reported.status(),
        403,
        "proposals count toward the reported limit too"
    );
    h.assert_books_balance("prop-1").await
}

#[tokio::test]
async fn a_streamed_proposal_of_a_blocked_tool_is_cut_before_the_agent_receives_it() -> TestResult {
    let h = harness::start().await?;
    let token = governed(
        &h,
        "streamed-proposals",
        json!({"blocked_tools": ["send_money"]}),
    )
    .await?;
    let mut body = chat_with_tool("get_weather");
    body["stream"] = json!(true);
    body["mock"] = json!({"tool_call": {"name": "send_money", "arguments": {"to": "mallory"}}});
    let reply = h
        .chat(&token, body, &[("x-rungate-run-id", "prop-stream")])
        .await?;
    assert_eq!(reply.status, 200, "the stream had started: {}", reply.text);
    assert!(
        !reply.text.contains("send_money\""),
        "the call never reaches the agent: {}",
        reply.text
    );
    assert!(
        !reply.text.contains("mallory"),
        "nor its arguments: {}",
        reply.text
    );
    let error = reply
        .events()
        .into_iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(&data).ok())
        .find(|event| !event["error"].is_null())
        .ok_or("no error event")?;
    assert_eq!(error["error"]["code"], "tool_blocked", "{error}");
    h.eventually("the blocked step is recorded", || async {
        Ok(h.steps("prop-stream").await?.len() == 1)
    })
    .await?;
    let steps = h.steps("prop-stream").await?;
    assert_eq!(steps[0]["status"], "blocked");
    let audit = h.admin_get("/api/runs/prop-stream/audit").await?;
    let kinds: Vec<&str> = audit["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"run.blocked"), "{kinds:?}");
    h.assert_books_balance("prop-stream").await
}

#[tokio::test]
async fn a_streamed_proposal_past_its_tool_limit_is_cut_like_a_blocked_one() -> TestResult {
    let h = harness::start().await?;
    let token = governed(
        &h,
        "streamed-limits",
        json!({"tool_limits": {"get_weather": 1}}),
    )
    .await?;
    let mut body = chat_with_tool("get_weather");
    body["stream"] = json!(true);
    body["mock"] = json!({"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}});
    let run = [("x-rungate-run-id", "limit-stream")];
    let first = h.chat(&token, body.clone(), &run).await?;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        first.text.contains("get_weather"),
        "the first proposal is within the limit"
    );
    let second = h.chat(&token, body, &run).await?;
    assert_eq!(
        second.status, 200,
        "the stream had started: {}",
        second.text
    );
    assert!(
        !second.text.contains("Oslo"),
        "the second call never reaches the agent: {}",
        second.text
    );
    let error = second
        .events()
        .into_iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(&data).ok())
        .find(|event| !event["error"].is_null())
        .ok_or("no error event")?;
    assert_eq!(error["error"]["code"], "tool_limit_reached", "{error}");
    h.eventually("both streamed steps are recorded", || async {
        Ok(h.steps("limit-stream").await?.len() == 2)
    })
    .await?;
    h.assert_books_balance("limit-stream").await
}
