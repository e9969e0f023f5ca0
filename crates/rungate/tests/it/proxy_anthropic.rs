use serde_json::{Value, json};

use crate::harness::{self, PROVIDER_SECRET, TestResult, user};

#[tokio::test]
async fn messages_use_the_anthropic_key_header_and_are_charged() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("claude").await?;
    // Anthropic SDKs send the token in x-api-key.
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "tools-2024-04-04")
        .json(&json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "messages": user("bonjour")}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let run_id = response
        .headers()
        .get("x-rungate-run-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await?;
    assert_eq!(body["content"][0]["text"], "Echo: bonjour");
    let seen = h.mock.requests().pop().ok_or("mock saw nothing")?;
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(PROVIDER_SECRET));
    assert_eq!(seen.header("anthropic-beta"), Some("tools-2024-04-04"));
    let run = h.run(&run_id).await?;
    assert!(run["total_cost_usd"].as_f64().unwrap_or(0.0) > 0.0, "{run}");
    h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn streamed_messages_report_usage_and_end_with_the_trailer() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("claude-stream").await?;
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 64, "stream": true, "messages": user("a b c d"),
        "mock": {"usage": {"input_tokens": 1200, "output_tokens": 345}}});
    let reply = h
        .messages(&token, body, &[("anthropic-version", "2023-06-01")])
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let names: Vec<String> = reply.events().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_stop", "rungate"]);
    let trailer = reply.rungate_trailer().ok_or("no trailer")?;
    assert_eq!(trailer["tokens"], json!({"input": 1200, "output": 345}));
    // claude-sonnet-4: $3 / $15 per million.
    let expected = (1200.0 * 3.0 + 345.0 * 15.0) / 1e6;
    assert!(
        (trailer["cost_usd"].as_f64().unwrap_or(0.0) - expected).abs() < 1e-9,
        "{trailer}"
    );
    Ok(())
}

#[tokio::test]
async fn doubled_v1_path_and_query_strings_are_accepted_and_forwarded() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("paths").await?;
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 8, "messages": user("x")})
        .to_string()
        .into_bytes();
    let reply = h
        .post_raw("/v1/v1/messages?beta=true", &token, body, &[])
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        h.mock.requests().pop().map(|r| r.path),
        Some("/v1/messages?beta=true".to_owned())
    );
    let count = h
        .post_raw(
            "/v1/messages/count_tokens",
            &token,
            json!({"model": "claude-sonnet-4", "messages": user("count me")})
                .to_string()
                .into_bytes(),
            &[],
        )
        .await?;
    assert_eq!(count.status, 200, "{}", count.text);
    assert!(count.json()["input_tokens"].as_u64().is_some());
    assert!(
        count.header("x-rungate-run-id").is_none(),
        "count_tokens is never charged to a run"
    );
    Ok(())
}
