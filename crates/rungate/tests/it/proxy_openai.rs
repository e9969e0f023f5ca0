use serde_json::{Value, json};

use crate::harness::{self, PROVIDER_SECRET, TestResult, user};

#[tokio::test]
async fn chat_is_forwarded_with_the_provider_key_and_charged_to_the_run() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("chat").await?;
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hello there")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Echo: hello there"
    );
    // The provider saw its own key, never the agent's Rungate token.
    let seen = h.mock.requests().pop().ok_or("mock saw nothing")?;
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {PROVIDER_SECRET}").as_str())
    );
    assert!(!format!("{:?}", seen.headers).contains(&token));
    for header in [
        "x-rungate-run-id",
        "x-rungate-step-id",
        "x-rungate-provider",
        "x-rungate-model",
        "x-rungate-cost-usd",
        "x-rungate-tokens-used",
    ] {
        assert!(reply.header(header).is_some(), "missing {header}");
    }
    assert_eq!(reply.header("x-rungate-provider"), Some("openai"));
    let cost = reply.header("x-rungate-cost-usd").unwrap_or_default();
    assert_eq!(
        cost.split('.').nth(1).map(str::len),
        Some(6),
        "six decimals: {cost}"
    );
    let usage = &reply.json()["usage"];
    let tokens = usage["prompt_tokens"].as_u64().unwrap_or(0)
        + usage["completion_tokens"].as_u64().unwrap_or(0);
    assert_eq!(
        reply.header("x-rungate-tokens-used"),
        Some(tokens.to_string().as_str())
    );
    let run = h.run(&reply.run_id()).await?;
    assert_eq!(run["steps_count"], 1);
    // gpt-4o-mini: $0.15 / $0.60 per million tokens.
    let expected = (usage["prompt_tokens"].as_f64().unwrap_or(0.0) * 0.15
        + usage["completion_tokens"].as_f64().unwrap_or(0.0) * 0.60)
        / 1e6;
    assert!(
        (run["total_cost_usd"].as_f64().unwrap_or(0.0) - expected).abs() < 1e-9,
        "{run}"
    );
    h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn unknown_fields_survive_and_the_rungate_field_is_removed() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("passthrough").await?;
    let body = json!({
        "model": "gpt-4o-mini", "messages": user("hi"), "temperature": 0.25, "seed": 7,
        "vendor_extension": {"nested": [1, 2.5, "x"]}, "rungate": {"run_id": "body-run-1"},
    });
    let reply = h.chat(&token, body, &[]).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.run_id(), "body-run-1");
    let forwarded = h
        .mock
        .requests()
        .pop()
        .and_then(|r| r.json())
        .ok_or("no body")?;
    assert_eq!(
        forwarded["vendor_extension"],
        json!({"nested": [1, 2.5, "x"]})
    );
    assert_eq!(forwarded["temperature"], json!(0.25));
    assert_eq!(forwarded["seed"], json!(7));
    assert!(
        forwarded.get("rungate").is_none(),
        "rungate field leaked upstream: {forwarded}"
    );
    Ok(())
}

#[tokio::test]
async fn streaming_injects_include_usage_hides_its_chunk_and_appends_the_trailer() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("stream").await?;
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "stream": true, "messages": user("one two three")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    assert!(
        reply.header("x-rungate-run-id").is_some() && reply.header("x-rungate-step-id").is_some()
    );
    let forwarded = h
        .mock
        .requests()
        .pop()
        .and_then(|r| r.json())
        .ok_or("no body")?;
    assert_eq!(forwarded["stream_options"]["include_usage"], json!(true));
    let events = reply.events();
    let chunks: Vec<Value> = events
        .iter()
        .filter(|(n, d)| n == "message" && d != "[DONE]")
        .filter_map(|(_, d)| serde_json::from_str(d).ok())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty())),
        "usage-only chunk reached a client that did not ask for it"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Echo: one two three");
    let names: Vec<&str> = events
        .iter()
        .map(|(n, d)| if d == "[DONE]" { "[DONE]" } else { n.as_str() })
        .collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["[DONE]", "rungate"],
        "trailer must follow [DONE]"
    );
    let trailer = reply.rungate_trailer().ok_or("no trailer")?;
    assert_eq!(trailer["run_id"], json!(reply.run_id()));
    assert!(trailer["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(
        trailer["tokens"]["input"].as_u64().unwrap_or(0) > 0
            && trailer["tokens"]["output"].as_u64().unwrap_or(0) > 0
    );
    let run_id = reply.run_id();
    h.eventually("the streamed step is settled", || async {
        Ok(h.run(&run_id).await?["steps_count"] == 1)
    })
    .await?;
    let step = &h.steps(&run_id).await?[0];
    assert_eq!(step["tokens"], trailer["tokens"]);
    assert_eq!(step["status"], "success");
    h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn a_client_that_asked_for_usage_still_gets_the_usage_chunk() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("usage").await?;
    let body = json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "messages": user("hi")});
    let reply = h.chat(&token, body, &[]).await?;
    let usage_chunks = reply
        .events()
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter(|c| c["choices"] == json!([]) && c["usage"].is_object())
        .count();
    assert_eq!(usage_chunks, 1, "{}", reply.text);
    Ok(())
}

#[tokio::test]
async fn tool_calls_pass_through_both_ways() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("tools").await?;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let mock = json!({"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}});
    let reply = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("weather?"), "tools": tools, "mock": mock}),
            &[],
        )
        .await?;
    let call = &reply.json()["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap_or("null"))?,
        json!({"city": "Paris"})
    );
    let streamed = h.chat(&token, json!({"model": "gpt-4o", "stream": true, "messages": user("weather?"), "tools": tools, "mock": mock}), &[]).await?;
    let args: String = streamed
        .events()
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args)?,
        json!({"city": "Paris"})
    );
    Ok(())
}

#[tokio::test]
async fn stream_bytes_reach_the_client_before_the_provider_has_finished() -> TestResult {
    use futures::StreamExt;
    let h = harness::start().await?;
    let (_, token) = h.agent("eager").await?;
    // The mock waits 400 ms between events; a buffering proxy would deliver everything at once.
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": user("a b c d e"), "mock": {"chunk_delay_ms": 400}});
    let response = h
        .http
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.ok_or("empty stream")??;
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("data: "), "{first}");
    assert!(
        !first.contains("[DONE]") && !first.contains("event: rungate"),
        "the first bytes already held the end: {first}"
    );
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk?));
    }
    assert!(rest.contains("data: [DONE]") && rest.contains("event: rungate"));
    Ok(())
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_still_charged_for_what_it_used() -> TestResult {
    use futures::StreamExt;
    let h = harness::start().await?;
    let (_, token) = h.agent("quitter").await?;
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 64, "stream": true, "messages": user("a b c d e f g h"),
        "mock": {"chunk_delay_ms": 200, "usage": {"input_tokens": 800, "output_tokens": 90}}});
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .bearer_auth(&token)
        .header("x-rungate-run-id", "quit-1")
        .json(&body)
        .send()
        .await?;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.ok_or("empty stream")??;
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    drop(stream);
    h.eventually("the abandoned stream is settled", || async {
        Ok(h.run("quit-1").await?["steps_count"] == 1)
    })
    .await?;
    let step = &h.steps("quit-1").await?[0];
    assert_eq!(step["tokens"]["input"], 800, "{step}");
    assert!(step["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(
        step["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("client disconnected"),
        "{step}"
    );
    h.assert_books_balance("quit-1").await
}
