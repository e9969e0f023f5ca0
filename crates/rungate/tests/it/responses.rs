//! `POST /v1/responses` (the OpenAI Responses API) under the same governance as the other
//! ingresses, and the model-name routing every ingress shares: provider prefixes, family
//! names, config aliases, Gemini and `openai_compatible` keys.

use serde_json::{Value, json};

use crate::gates::gated_agent;
use crate::harness::{self, Harness, PROVIDER_SECRET, Setup, TestResult};

async fn responses(
    h: &Harness,
    token: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> TestResult<harness::Reply> {
    h.post_raw(
        "/v1/responses",
        token,
        body.to_string().into_bytes(),
        headers,
    )
    .await
}

/// The text of a Responses answer's message items.
fn output_text(body: &Value) -> String {
    body["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_responses_call_is_forwarded_charged_and_reported_in_headers() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("responder").await?;
    let reply = responses(
        &h,
        &token,
        json!({"model": "gpt-4o-mini", "input": "hello responses", "instructions": "be kind",
               "max_output_tokens": 64, "unknown_field": {"kept": true}}),
        &[],
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["object"], "response");
    assert_eq!(output_text(&body), "Echo: hello responses");
    let seen = h.mock.requests().pop().ok_or("mock saw nothing")?;
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {PROVIDER_SECRET}").as_str())
    );
    let sent: Value = serde_json::from_slice(&seen.body)?;
    assert_eq!(
        sent["unknown_field"]["kept"], true,
        "unknown fields pass through"
    );
    assert_eq!(reply.header("x-rungate-provider"), Some("openai"));
    let cost: f64 = reply
        .header("x-rungate-cost-usd")
        .ok_or("no cost header")?
        .parse()?;
    assert!(cost > 0.0);
    let steps = h.steps(&reply.run_id()).await?;
    assert_eq!(steps.len(), 1);
    assert_eq!(
        steps[0]["tokens"]["input"], body["usage"]["input_tokens"],
        "the step is charged the provider's own usage"
    );
    h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn a_streamed_responses_call_reports_usage_and_ends_with_the_trailer() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("streamer").await?;
    let reply = responses(
        &h,
        &token,
        json!({"model": "gpt-4o-mini", "input": [{"role": "user", "content": "stream it"}], "stream": true}),
        &[],
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = reply.events();
    let text = reply.streamed_responses_text();
    assert_eq!(text, "Echo: stream it");
    let completed = events
        .iter()
        .find(|(name, _)| name == "response.completed")
        .ok_or("no response.completed")?;
    let completed: Value = serde_json::from_str(&completed.1)?;
    let trailer = reply.rungate_trailer().ok_or("no trailer")?;
    assert_eq!(
        trailer["tokens"]["output"],
        completed["response"]["usage"]["output_tokens"]
    );
    h.eventually("the streamed step is recorded", || async {
        Ok(h.steps(&reply.run_id()).await?.len() == 1)
    })
    .await?;
    h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn responses_calls_meet_the_same_policies_and_gates() -> TestResult {
    let h = harness::start().await?;
    // A model outside allowed_models: 403 in OpenAI's error envelope, before any forwarding.
    let (_, token) = h.agent("limited").await?;
    let refused = responses(&h, &token, json!({"model": "gpt-5", "input": "x"}), &[]).await?;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "model_not_allowed");
    assert_eq!(refused.header("x-rungate-governance"), Some("blocked"));
    // A blocked declared tool.
    let rules = json!({"blocked_tools": ["delete_database"]});
    let guarded = gated_agent(&h, "guarded", rules).await?;
    let blocked = responses(
        &h,
        &guarded,
        json!({"model": "gpt-4o-mini", "input": "x",
               "tools": [{"type": "function", "name": "delete_database", "parameters": {"type": "object"}}]}),
        &[],
    )
    .await?;
    assert_eq!(blocked.status, 403, "{}", blocked.text);
    assert_eq!(blocked.json()["error"]["code"], "tool_blocked");
    // A proposed function call that needs approval is held behind a gate.
    let rules = json!({"gates": [{"id": "refund", "tool": "issue_refund", "when": "args.amount_usd > 500"}]});
    let support = gated_agent(&h, "support", rules).await?;
    let asking = json!({"model": "gpt-4o-mini", "input": "refund it",
        "tools": [{"type": "function", "name": "issue_refund", "parameters": {"type": "object"}}],
        "mock": {"tool_call": {"name": "issue_refund", "arguments": {"amount_usd": 900}}}});
    let held = responses(
        &h,
        &support,
        asking.clone(),
        &[("x-rungate-run-id", "resp-gate")],
    )
    .await?;
    assert_eq!(held.status, 202, "{}", held.text);
    assert_eq!(
        held.json()["context"]["proposed_action"]["tool"],
        "issue_refund"
    );
    let gate = held.json()["approval_requests"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    h.admin_post(&format!("/api/approval-requests/{gate}/approve"), json!({}))
        .await?;
    let passed = responses(&h, &support, asking, &[("x-rungate-run-id", "resp-gate")]).await?;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let call = passed.json()["output"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["type"] == "function_call").cloned())
        .ok_or("no function_call item")?;
    assert_eq!(call["name"], "issue_refund");
    h.assert_books_balance("resp-gate").await
}

#[tokio::test]
async fn a_responses_call_can_fail_over_to_anthropic_and_stream_back_as_responses_events()
-> TestResult {
    let h = harness::start().await?;
    let primary = mock_upstream::MockUpstream::start(mock_upstream::MockConfig {
        default_script: Some(json!({"status": 502})),
        ..mock_upstream::MockConfig::default()
    })
    .await?;
    let flaky = h
        .provider_key("openai", "down", &primary.base_url())
        .await?;
    let routing = json!({"default_chain": ["anthropic"],
                         "model_map": {"gpt-4o-mini": {"anthropic": "claude-haiku-4-5"}}});
    let keys = json!({"openai": flaky, "anthropic": h.anthropic_key});
    let token = &h
        .mapped_agent("resp-fo", json!({"routing": routing}), keys)
        .await?;
    let reply = responses(
        &h,
        token,
        json!({"model": "gpt-4o-mini", "input": "over to claude", "stream": true}),
        &[],
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("x-rungate-failover"), Some("1"));
    let names: Vec<String> = reply.events().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("response.created"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "response.completed"), "{names:?}");
    let text = reply.streamed_responses_text();
    assert_eq!(text, "Echo: over to claude");
    let seen = h.mock.requests().pop().ok_or("anthropic saw nothing")?;
    assert_eq!(seen.path, "/v1/messages");
    let run_id = reply.run_id();
    h.eventually("both attempts recorded", || async {
        Ok(h.steps(&run_id).await?.len() == 2)
    })
    .await?;
    h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn model_names_route_by_prefix_family_and_alias() -> TestResult {
    let h = harness::start_with(Setup {
        extra_yaml: "model_aliases:\n  fast: gemini/gemini-2.5-flash\npricing:\n  gemini-2.5-flash: {input_per_million: 0.3, output_per_million: 2.5}\n".into(),
        allowed_models: json!(["gpt-4o-mini", "claude-sonnet-4*", "gemini-2.5-flash"]),
    })
    .await?;
    let gemini = h.provider_key("gemini", "g", &h.mock.base_url()).await?;
    let agent = h
        .admin_post("/api/agents", json!({"name": "router", "policy_id": h.policy_id,
            "provider_keys": {"openai": h.openai_key, "anthropic": h.anthropic_key, "gemini": gemini}}))
        .await?;
    let token = agent["data"]["api_key"].as_str().ok_or("no token")?;
    let ask = |model: &str| json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "route me"}]});
    // A provider prefix on the OpenAI endpoint: Anthropic, translated both ways.
    let prefixed = h
        .chat(token, ask("anthropic/claude-sonnet-4-5"), &[])
        .await?;
    assert_eq!(prefixed.status, 200, "{}", prefixed.text);
    assert_eq!(
        prefixed.json()["choices"][0]["message"]["content"],
        "Echo: route me"
    );
    assert_eq!(prefixed.header("x-rungate-provider"), Some("anthropic"));
    assert_eq!(
        prefixed.header("x-rungate-model"),
        Some("claude-sonnet-4-5")
    );
    let seen = h.mock.requests().pop().ok_or("nothing seen")?;
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body)?["model"],
        "claude-sonnet-4-5"
    );
    // A bare Gemini name on the Anthropic endpoint, for an agent that maps a Gemini key.
    let family = h.messages(token, ask("gemini-2.5-flash"), &[]).await?;
    assert_eq!(family.status, 200, "{}", family.text);
    assert_eq!(family.json()["content"][0]["text"], "Echo: route me");
    assert_eq!(family.header("x-rungate-provider"), Some("gemini"));
    let seen = h.mock.requests().pop().ok_or("nothing seen")?;
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    // An alias from the config, streamed: Gemini's SSE comes back as OpenAI chunks.
    let mut streamed = ask("fast");
    streamed["stream"] = json!(true);
    let alias = h.chat(token, streamed, &[]).await?;
    assert_eq!(alias.status, 200, "{}", alias.text);
    assert_eq!(alias.header("x-rungate-provider"), Some("gemini"));
    assert_eq!(alias.streamed_chat_text(), "Echo: route me");
    let seen = h.mock.requests().pop().ok_or("nothing seen")?;
    assert_eq!(
        seen.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(seen.header("x-goog-api-key"), Some(PROVIDER_SECRET));
    // Each call was priced as the model it reached.
    let run_id = alias.run_id();
    h.eventually("the streamed step is recorded", || async {
        Ok(h.steps(&run_id).await?.len() == 3)
    })
    .await?;
    for step in h.steps(&run_id).await? {
        assert!(step["cost_usd"].as_f64().unwrap_or(0.0) > 0.0, "{step}");
    }
    h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn an_openai_compatible_key_needs_a_base_url_and_serves_self_hosted_models() -> TestResult {
    let h = harness::start().await?;
    let refused = h
        .http
        .post(format!("{}/api/provider-keys", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({"provider": "openai_compatible", "name": "vllm", "api_key": "k"}))
        .send()
        .await?;
    assert_eq!(refused.status(), 400);
    let text = refused.text().await?;
    assert!(text.contains("base_url"), "{text}");
    let vllm = h
        .provider_key("openai_compatible", "vllm", &h.mock.base_url())
        .await?;
    let token = &h
        .mapped_agent("selfhosted", json!({}), json!({"openai_compatible": vllm}))
        .await?;
    // A model that lives only on the self-hosted endpoint, named by the key's name.
    let reply = h
        .chat(token, json!({"model": "vllm/meta-llama/Llama-3.1-8B-Instruct", "messages": [{"role": "user", "content": "hi llama"}]}), &[])
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Echo: hi llama"
    );
    assert_eq!(
        reply.header("x-rungate-provider"),
        Some("openai_compatible")
    );
    let seen = h.mock.requests().pop().ok_or("nothing seen")?;
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body)?["model"],
        "meta-llama/Llama-3.1-8B-Instruct",
        "the key-name prefix is stripped, the model's own slash kept"
    );
    // A bare name goes there too: the agent maps no OpenAI key, only the self-hosted one.
    let bare = h
        .chat(
            token,
            json!({"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "bare"}]}),
            &[],
        )
        .await?;
    assert_eq!(bare.status, 200, "{}", bare.text);
    assert_eq!(bare.header("x-rungate-provider"), Some("openai_compatible"));
    Ok(())
}
