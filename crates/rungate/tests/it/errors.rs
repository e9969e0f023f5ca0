use serde_json::json;

use crate::harness::{self, Setup, TestResult, user};

#[tokio::test]
async fn bad_input_gets_a_structured_error_in_the_callers_dialect() -> TestResult {
    let h = harness::start_with(Setup {
        extra_yaml: "max_body_bytes: 4096\n".into(),
        ..Setup::default()
    })
    .await?;
    let (_, token) = h.agent("sloppy").await?;
    let check = |status: u16, code: &str, reply: &harness::Reply| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.json()["error"]["code"], code, "{}", reply.text);
    };
    let malformed = h
        .post_raw(
            "/v1/chat/completions",
            &token,
            b"{\"model\": \"gpt-4o\", ".to_vec(),
            &[],
        )
        .await?;
    check(400, "invalid_request", &malformed);
    assert!(
        malformed.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("line")
    );
    let anthropic = h
        .post_raw("/v1/messages", &token, b"not json".to_vec(), &[])
        .await?;
    check(400, "invalid_request", &anthropic);
    assert_eq!(anthropic.json()["type"], "error", "Anthropic envelope");
    let no_model = h.chat(&token, json!({"messages": user("hi")}), &[]).await?;
    check(400, "invalid_request", &no_model);
    assert!(no_model.text.contains("model"));
    let huge = json!({"model": "gpt-4o-mini", "messages": user(&"x".repeat(10_000))});
    check(413, "payload_too_large", &h.chat(&token, huge, &[]).await?);
    check(
        401,
        "invalid_api_key",
        &h.chat(
            "rg_agt_not-a-real-token",
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[],
        )
        .await?,
    );
    check(
        401,
        "invalid_api_key",
        &h.chat(
            "",
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[],
        )
        .await?,
    );
    assert_eq!(
        h.mock.request_count(),
        0,
        "nothing bad reached the provider"
    );
    Ok(())
}

#[tokio::test]
async fn governance_refusals_name_the_rule() -> TestResult {
    let h = harness::start().await?;
    let (agent_id, token) = h.agent("governed").await?;
    let denied = h
        .chat(
            &token,
            json!({"model": "gpt-3.5-turbo", "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(denied.status, 403);
    let error = &denied.json()["error"];
    assert_eq!(error["code"], "model_not_allowed");
    assert_eq!(error["type"], "governance_block");
    assert_eq!(error["context"]["policy_name"], "it");
    assert!(error["run_id"].is_string());
    assert_eq!(denied.header("x-rungate-governance"), Some("blocked"));
    h.admin_put(
        &format!("/api/agents/{agent_id}"),
        json!({"status": "disabled"}),
    )
    .await?;
    let disabled = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(disabled.status, 403);
    assert_eq!(disabled.json()["error"]["code"], "agent_disabled");
    assert_eq!(h.mock.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn an_upstream_that_hangs_gets_504_and_the_step_is_recorded_as_timeout() -> TestResult {
    let h = harness::start_with(Setup {
        extra_yaml: "upstream_timeout_ms: 300\n".into(),
        ..Setup::default()
    })
    .await?;
    let (_, token) = h.agent("patient").await?;
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": {"hang": true}}),
            &[("x-rungate-run-id", "hang-1")],
        )
        .await?;
    assert_eq!(reply.status, 504, "{}", reply.text);
    assert_eq!(reply.json()["error"]["code"], "provider_timeout");
    let steps = h.steps("hang-1").await?;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["status"], "timeout");
    h.assert_books_balance("hang-1").await
}

/// The providers' own endpoints are `https://`: a key's https base URL is reached over TLS, and
/// a peer that does not complete the handshake (here: a bare TCP listener) gets 502, not a call
/// sent in clear text.
#[tokio::test]
async fn an_https_base_url_is_reached_over_tls() -> TestResult {
    let h = harness::start().await?;
    let (agent_id, token) = h.agent("secure").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut socket, _) = listener.accept().await?;
        let mut head = [0u8; 3];
        socket.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    });
    let key = h
        .provider_key("openai", "tls", &format!("https://{addr}"))
        .await?;
    h.map_key(&agent_id, "openai", &key).await?;
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[("x-rungate-run-id", "tls-1")],
        )
        .await?;
    // A TLS record of type handshake (22), protocol major version 3: a ClientHello.
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), first_bytes)
        .await
        .map_err(|_| "the gateway never connected to the https upstream")???;
    assert_eq!(head[0], 0x16, "expected a TLS ClientHello, got {head:?}");
    assert_eq!(head[1], 0x03, "expected a TLS ClientHello, got {head:?}");
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(
        reply.json()["error"]["code"],
        "provider_error",
        "{}",
        reply.text
    );
    assert_eq!(h.steps("tls-1").await?[0]["status"], "error");
    h.assert_books_balance("tls-1").await
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_call_still_has_the_call_recorded() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("impatient").await?;
    // The client gives up after 100 ms; the provider answers (and bills) at 400 ms.
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(100))
        .build()?;
    let sent = impatient
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(&token)
        .header("x-rungate-run-id", "hangup-1")
        .json(&json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": {"latency_ms": 400}}))
        .send()
        .await;
    assert!(
        sent.is_err_and(|e| e.is_timeout()),
        "the client should have given up"
    );
    let mut steps = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        steps = h.steps("hangup-1").await?;
        if !steps.is_empty() {
            break;
        }
    }
    assert_eq!(
        steps.len(),
        1,
        "the answered call must be a step: {steps:?}"
    );
    assert_eq!(steps[0]["status"], "success", "{steps:?}");
    assert_eq!(steps[0]["http_status"], 200, "{steps:?}");
    assert!(
        steps[0]["cost_usd"].as_f64().unwrap_or(0.0) > 0.0,
        "{steps:?}"
    );
    assert_eq!(h.mock.request_count(), 1);
    h.assert_books_balance("hangup-1").await
}

#[tokio::test]
async fn an_unreachable_or_failing_upstream_gets_502_with_details() -> TestResult {
    let h = harness::start().await?;
    let (agent_id, token) = h.agent("unlucky").await?;
    let failing = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": {"status": 503}}),
            &[("x-rungate-run-id", "fail-1")],
        )
        .await?;
    assert_eq!(failing.status, 502, "{}", failing.text);
    let error = &failing.json()["error"];
    assert_eq!(error["code"], "provider_error");
    assert_eq!(error["details"][0]["provider"], "openai");
    assert_eq!(error["details"][0]["status"], 503);
    assert_eq!(h.steps("fail-1").await?[0]["status"], "error");
    // A provider's own 4xx answer passes through unchanged.
    let bad_param = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": {"status": 400}}),
            &[],
        )
        .await?;
    assert_eq!(bad_param.status, 400);
    assert_eq!(bad_param.json()["error"]["message"], "mock error 400");
    // A key whose endpoint refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dead = h
        .provider_key("openai", "dead", &format!("http://{closed}"))
        .await?;
    h.map_key(&agent_id, "openai", &dead).await?;
    let refused = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[],
        )
        .await?;
    assert_eq!(refused.status, 502, "{}", refused.text);
    assert!(
        refused.json()["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("openai")
    );
    Ok(())
}

#[tokio::test]
async fn an_upstream_dying_mid_stream_ends_the_stream_with_an_error_and_settles_partial_usage()
-> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("fragile").await?;
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 64, "stream": true, "messages": user("one two three four five"),
        "mock": {"die_after_events": 4, "usage": {"input_tokens": 500, "output_tokens": 50}}});
    let reply = h
        .messages(&token, body, &[("x-rungate-run-id", "die-1")])
        .await?;
    assert_eq!(reply.status, 200);
    let events = reply.events();
    assert!(
        events.iter().any(|(n, _)| n == "error"),
        "client must see an error event: {}",
        reply.text
    );
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    h.eventually("the broken stream is settled", || async {
        Ok(h.run("die-1").await?["steps_count"] == 1)
    })
    .await?;
    let step = &h.steps("die-1").await?[0];
    assert_eq!(step["status"], "error");
    assert_eq!(
        step["tokens"]["input"], 500,
        "partial usage from message_start is charged: {step}"
    );
    assert!(step["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    h.assert_books_balance("die-1").await
}
