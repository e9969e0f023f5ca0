//! Routing across vendors: a primary provider that answers 500 / 429 or hangs is replaced by
//! the next one of the policy's chain, in another dialect, and the agent still gets its own
//! format (streams included). Every attempt is its own step and ledger entry, and the circuit
//! breaker stops sending calls to a key that keeps failing.

use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::harness::{self, Harness, PROVIDER_SECRET, Setup, TestResult, user};

/// A gateway whose agent's OpenAI traffic goes to a second mock that fails every call with
/// `script`; the policy's chain continues on the regular mock's Anthropic and Gemini keys.
struct Flaky {
    h: Harness,
    primary: MockUpstream,
    /// The agent's token, and the failing key's id.
    token: String,
    flaky_key: String,
}

async fn flaky(script: Value, routing: Value, extra_yaml: &str) -> TestResult<Flaky> {
    let h = harness::start_with(Setup {
        extra_yaml: extra_yaml.to_owned(),
        ..Setup::default()
    })
    .await?;
    let primary = MockUpstream::start(MockConfig {
        require_key: Some(PROVIDER_SECRET.into()),
        default_script: Some(script),
        ..MockConfig::default()
    })
    .await?;
    let flaky_id = h
        .provider_key("openai", "flaky-openai", &primary.base_url())
        .await?;
    let gemini_id = h
        .provider_key("gemini", "mock-gemini", &h.mock.base_url())
        .await?;
    let keys = json!({"openai": flaky_id, "anthropic": h.anthropic_key, "gemini": gemini_id});
    let token = h
        .mapped_agent("failing-over", json!({"routing": routing}), keys)
        .await?;
    Ok(Flaky {
        h,
        primary,
        token,
        flaky_key: flaky_id,
    })
}

impl Flaky {
    /// The agent's OpenAI chat call for `gpt-4o-mini` saying `text`.
    async fn ask(&self, text: &str) -> TestResult<harness::Reply> {
        self.h
            .chat(
                &self.token,
                json!({"model": "gpt-4o-mini", "messages": user(text)}),
                &[],
            )
            .await
    }
}

fn to_anthropic() -> Value {
    json!({"default_chain": ["anthropic"], "model_map": {"gpt-4o-mini": {"anthropic": "claude-sonnet-4-5"}}})
}

/// The run's steps, oldest first (step ids are time-ordered).
async fn attempts(h: &Harness, run_id: &str) -> TestResult<Vec<Value>> {
    let mut steps = h.steps(run_id).await?;
    steps.sort_by_key(|s| s["id"].as_str().map(str::to_owned));
    Ok(steps)
}

async fn audit_kinds(h: &Harness, run_id: &str) -> TestResult<Vec<Value>> {
    let audit = h.admin_get(&format!("/api/runs/{run_id}/audit")).await?;
    Ok(audit["data"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_500_fails_over_to_anthropic_and_the_openai_caller_gets_a_chat_completion() -> TestResult
{
    let f = flaky(json!({"status": 500}), to_anthropic(), "").await?;
    // A webhook subscribed to failovers (its receiver need not exist: the delivery log shows it).
    let hook = f
        .h
        .admin_post(
            "/api/webhooks",
            json!({"name": "ops", "url": "http://127.0.0.1:9/hook", "events": ["step.failed_over"]}),
        )
        .await?;
    let hook_id = hook["data"]["id"]
        .as_str()
        .ok_or("no webhook id")?
        .to_owned();
    let reply = f.ask("hello there").await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello there"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        body["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0,
        "{body}"
    );
    assert_eq!(reply.header("x-rungate-failover"), Some("1"));
    assert_eq!(reply.header("x-rungate-provider"), Some("anthropic"));
    assert_eq!(reply.header("x-rungate-model"), Some("claude-sonnet-4-5"));
    // The primary was asked once, the secondary got an Anthropic request for the mapped model.
    assert_eq!(f.primary.requests().len(), 1);
    let seen = f.h.mock.requests().pop().ok_or("secondary saw nothing")?;
    assert_eq!(seen.path, "/v1/messages");
    let sent: Value = serde_json::from_slice(&seen.body)?;
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["messages"][0]["role"], "user");
    // Two attempts, two steps, both in the ledger; the failed one cost nothing.
    let run_id = reply.run_id();
    let steps = attempts(&f.h, &run_id).await?;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0]["provider"], "openai");
    assert_eq!(steps[0]["status"], "error");
    assert_eq!(steps[0]["http_status"], 500);
    assert_eq!(steps[1]["provider"], "anthropic");
    assert_eq!(steps[1]["status"], "success");
    assert!(steps[1]["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    let ledger = f.h.admin_get(&format!("/api/runs/{run_id}/ledger")).await?;
    let charged: Vec<&Value> = ledger["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "settlement")
        .collect();
    assert_eq!(charged.len(), 2, "{ledger}");
    let events = audit_kinds(&f.h, &run_id).await?;
    let failed_over = events
        .iter()
        .find(|e| e["kind"] == "step.failed_over")
        .ok_or("no step.failed_over event")?;
    assert_eq!(failed_over["data"]["from"]["provider"], "openai");
    assert_eq!(failed_over["data"]["to"]["provider"], "anthropic");
    assert_eq!(failed_over["data"]["reason"], "status 500");
    let recorded = events
        .iter()
        .filter(|e| e["kind"] == "step.recorded")
        .count();
    assert_eq!(recorded, 2);
    let deliveries =
        f.h.admin_get(&format!("/api/webhooks/{hook_id}/deliveries"))
            .await?;
    let delivery = deliveries["data"]
        .as_array()
        .and_then(|d| d.first().cloned())
        .ok_or("no step.failed_over delivery")?;
    assert_eq!(delivery["event"], "step.failed_over");
    assert_eq!(delivery["data"]["run_id"], json!(run_id));
    assert_eq!(delivery["data"]["to"]["model"], "claude-sonnet-4-5");
    f.h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn a_streamed_call_fails_over_and_streams_openai_chunks_from_anthropic() -> TestResult {
    let f = flaky(json!({"status": 503}), to_anthropic(), "").await?;
    let reply =
        f.h.chat(
            &f.token,
            json!({"model": "gpt-4o-mini", "stream": true, "messages": user("stream me")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    assert_eq!(reply.header("x-rungate-failover"), Some("1"));
    let events = reply.events();
    let chunks = reply.event_data("message");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        // The client did not ask for usage: the usage-only chunk stays hidden.
        let has_choices = chunk["choices"].as_array().is_some_and(|c| !c.is_empty());
        assert!(chunk["usage"].is_null() || has_choices, "{chunk}");
    }
    assert_eq!(reply.streamed_chat_text(), "Echo: stream me");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("stop"));
    assert!(events.iter().any(|(_, d)| d == "[DONE]"), "{}", reply.text);
    let trailer = reply.rungate_trailer().ok_or("no trailer")?;
    assert_eq!(trailer["provider"], "anthropic");
    assert!(
        trailer["tokens"]["output"].as_u64().unwrap_or(0) > 0,
        "{trailer}"
    );
    let run_id = reply.run_id();
    f.h.eventually("both attempts recorded", || async {
        Ok(f.h.steps(&run_id).await?.len() == 2)
    })
    .await?;
    let steps = attempts(&f.h, &run_id).await?;
    assert_eq!(steps[0]["http_status"], 503);
    assert_eq!(steps[1]["status"], "success");
    assert!(
        steps[1]["tokens"]["output"].as_u64().unwrap_or(0) > 0,
        "{steps:?}"
    );
    f.h.assert_books_balance(&run_id).await
}

#[tokio::test]
async fn a_rate_limited_primary_fails_over_to_gemini_and_the_anthropic_caller_gets_a_message()
-> TestResult {
    // The agent speaks Anthropic, but asks for an OpenAI model by prefix: OpenAI answers 429,
    // Gemini takes over, and the answer comes back as an Anthropic message.
    let routing = json!({"default_chain": ["gemini"], "model_map": {"gpt-4o-mini": {"gemini": "gemini-2.5-flash"}}});
    let f = flaky(json!({"status": 429}), routing, "").await?;
    let reply =
        f.h.messages(
            &f.token,
            json!({"model": "openai/gpt-4o-mini", "max_tokens": 100, "system": "be brief",
                   "messages": user("from anthropic")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["type"], "message", "{body}");
    assert_eq!(body["content"][0]["text"], "Echo: from anthropic");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(reply.header("x-rungate-provider"), Some("gemini"));
    // The primary got an OpenAI request (translated from Anthropic, prefix stripped).
    let first = f.primary.requests().pop().ok_or("primary saw nothing")?;
    assert_eq!(first.path, "/v1/chat/completions");
    let sent: Value = serde_json::from_slice(&first.body)?;
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["messages"][0]["role"], "system");
    let seen = f.h.mock.requests().pop().ok_or("gemini saw nothing")?;
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(PROVIDER_SECRET));
    let sent: Value = serde_json::from_slice(&seen.body)?;
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "be brief");
    let steps = attempts(&f.h, &reply.run_id()).await?;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["http_status"], 429);
    assert_eq!(steps[1]["provider"], "gemini");
    f.h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn a_hanging_primary_times_out_and_the_call_is_charged_for_both_attempts() -> TestResult {
    let routing = json!({"default_chain": ["anthropic"], "timeout_ms": 300,
                         "model_map": {"gpt-4o-mini": {"anthropic": "claude-sonnet-4-5"}}});
    let f = flaky(json!({"hang": true}), routing, "").await?;
    let reply = f.ask("are you there").await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Echo: are you there"
    );
    let steps = attempts(&f.h, &reply.run_id()).await?;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["status"], "timeout");
    // The provider may have processed the prompt: the timed-out attempt is charged its input.
    assert!(
        steps[0]["tokens"]["input"].as_u64().unwrap_or(0) > 0,
        "{steps:?}"
    );
    assert!(
        steps[0]["cost_usd"].as_f64().unwrap_or(0.0) > 0.0,
        "{steps:?}"
    );
    let run = f.h.run(&reply.run_id()).await?;
    let total = run["total_cost_usd"].as_f64().unwrap_or(0.0);
    let parts: f64 = steps
        .iter()
        .map(|s| s["cost_usd"].as_f64().unwrap_or(0.0))
        .sum();
    assert!((total - parts).abs() < 1e-9, "run {total} vs steps {parts}");
    f.h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn without_a_chain_a_500_is_a_502_listing_the_provider() -> TestResult {
    let f = flaky(json!({"status": 500}), json!({"max_retries": 1}), "").await?;
    let reply = f.ask("x").await?;
    assert_eq!(reply.status, 502, "{}", reply.text);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "provider_error");
    // One retry on the same provider, then the caller hears about both attempts.
    assert_eq!(
        error["details"].as_array().map(Vec::len),
        Some(2),
        "{error}"
    );
    assert_eq!(f.primary.requests().len(), 2);
    assert_eq!(f.h.steps(&reply.run_id()).await?.len(), 2);
    f.h.assert_books_balance(&reply.run_id()).await
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_health_shows_it() -> TestResult {
    let yaml = "circuit_breaker:\n  failure_threshold: 2\n  cooldown_ms: 60000\n";
    let f = flaky(json!({"status": 500}), to_anthropic(), yaml).await?;
    for i in 0..3 {
        let reply = f.ask(&format!("call {i}")).await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Two failures opened the circuit: the third call went straight to Anthropic.
    assert_eq!(f.primary.requests().len(), 2);
    let health = f.h.admin_get("/api/providers/health").await?;
    let rows = health["data"].as_array().ok_or("no data")?;
    let flaky = rows
        .iter()
        .find(|r| r["name"] == "flaky-openai")
        .ok_or("flaky key missing from health")?;
    assert_eq!(flaky["circuit"], "open", "{flaky}");
    assert_eq!(flaky["failures"], 2);
    assert!(flaky["next_probe_at"].is_string());
    let anthropic = rows
        .iter()
        .find(|r| r["name"] == "mock-anthropic")
        .ok_or("anthropic key missing")?;
    assert_eq!(anthropic["circuit"], "closed");
    assert_eq!(anthropic["successes"], 3);
    Ok(())
}

#[tokio::test]
async fn a_4xx_is_not_failed_over_and_reaches_the_caller_in_its_dialect() -> TestResult {
    let f = flaky(json!({"status": 400}), to_anthropic(), "").await?;
    let reply = f.ask("x").await?;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.json()["error"]["message"].is_string(),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("x-rungate-failover"), Some("0"));
    assert!(f.h.mock.requests().is_empty(), "no failover on a 400");
    Ok(())
}

#[tokio::test]
async fn a_routing_block_with_a_bad_value_is_refused_naming_the_field() -> TestResult {
    let h = harness::start().await?;
    for (routing, field) in [
        (json!({"retry_on": ["4xx"]}), "retry_on"),
        (json!({"max_retries": 99}), "routing.max_retries"),
        (json!({"on_rate_limit": "wait"}), "on_rate_limit"),
        (json!({"chain": ["openai"]}), "chain"),
    ] {
        let response = h
            .http
            .post(format!("{}/api/policies", h.url))
            .bearer_auth(harness::ADMIN_PASSWORD)
            .json(&json!({"name": "bad-routing", "routing": routing}))
            .send()
            .await?;
        assert_eq!(response.status(), 400, "{routing}");
        let body: Value = response.json().await?;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{routing}: {message}");
    }
    // The accepted block reads back as it was written.
    let routing = json!({"default_chain": ["openai", "anthropic"], "timeout_ms": 10000,
        "retry_on": [429, "5xx", "timeout"], "max_retries": 1, "on_rate_limit": "failover_first",
        "model_map": {"gpt-4o": {"anthropic": "claude-sonnet-4"}}});
    let created = h
        .admin_post(
            "/api/policies",
            json!({"name": "good-routing", "routing": routing}),
        )
        .await?;
    let id = created["data"]["id"].as_str().ok_or("no id")?;
    let read = h.admin_get(&format!("/api/policies/{id}")).await?;
    let stored = if read["data"]["routing"].is_null() {
        read["data"]["document"]["routing"].clone()
    } else {
        read["data"]["routing"].clone()
    };
    assert_eq!(stored, routing, "{read}");
    Ok(())
}

#[tokio::test]
async fn a_target_provider_without_a_usable_key_is_left_out_and_the_chain_answers() -> TestResult {
    let h = harness::start().await?;
    let disabled = h
        .provider_key("anthropic", "retired", &h.mock.base_url())
        .await?;
    h.admin_put(
        &format!("/api/provider-keys/{disabled}"),
        json!({"status": "disabled"}),
    )
    .await?;
    let routing = json!({"default_chain": ["openai"],
                         "model_map": {"claude-sonnet-4-5": {"openai": "gpt-4o-mini"}}});
    let token = h
        .mapped_agent(
            "left-out",
            json!({"routing": routing}),
            json!({"anthropic": disabled, "openai": h.openai_key}),
        )
        .await?;
    let reply = h
        .messages(
            &token,
            json!({"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": user("anyone?")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["content"][0]["text"], "Echo: anyone?");
    assert_eq!(reply.header("x-rungate-provider"), Some("openai"));
    assert_eq!(reply.header("x-rungate-model"), Some("gpt-4o-mini"));
    let steps = h.steps(&reply.run_id()).await?;
    assert_eq!(steps.len(), 1, "a left-out provider is not an attempt");
    assert_eq!(steps[0]["model"], "gpt-4o-mini");
    assert!(steps[0]["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    Ok(())
}

#[tokio::test]
async fn a_failover_to_a_pricier_model_must_fit_the_runs_budget() -> TestResult {
    // A $0.01 cap covers this gpt-4o-mini call (1000 output tokens: $0.0006) but not the same
    // call on Claude Opus ($0.075): the failover is refused, Opus never called.
    let routing = json!({"default_chain": ["anthropic"],
                         "model_map": {"gpt-4o-mini": {"anthropic": "claude-opus-4-1"}}});
    let f = flaky(json!({"status": 500}), routing.clone(), "").await?;
    let keys = json!({"openai": f.flaky_key, "anthropic": f.h.anthropic_key});
    let capped =
        f.h.mapped_agent(
            "capped",
            json!({"routing": routing, "budget": {"hard_limit_usd": 0.01}}),
            keys.clone(),
        )
        .await?;
    let ask = json!({"model": "gpt-4o-mini", "max_tokens": 1000, "messages": user("too dear")});
    let reply = f.h.chat(&capped, ask.clone(), &[]).await?;
    assert_eq!(reply.status, 502, "{}", reply.text);
    let details = reply.json()["error"]["details"].clone();
    let said = details.to_string();
    assert!(said.contains("budget cannot cover"), "{said}");
    assert!(f.h.mock.requests().is_empty(), "Opus was never called");
    assert_eq!(f.h.steps(&reply.run_id()).await?.len(), 1);
    f.h.assert_books_balance(&reply.run_id()).await?;
    // With room for Opus the same failover goes through.
    let roomy =
        f.h.mapped_agent(
            "roomy",
            json!({"routing": routing, "budget": {"hard_limit_usd": 1.0}}),
            keys,
        )
        .await?;
    let reply = f.h.chat(&roomy, ask, &[]).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("x-rungate-model"), Some("claude-opus-4-1"));
    f.h.assert_books_balance(&reply.run_id()).await
}
