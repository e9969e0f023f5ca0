//! Price tables as an operator uses them: importing LiteLLM's price map through the admin API
//! (and the CLI) prices the next call with it and names its version on the step and its audit
//! event; the table survives a restart; a provider key's own prices price a model no table
//! knows, and the step says which key priced it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{self, ADMIN_PASSWORD, Harness, PROVIDER_SECRET, Setup, TestResult, user};

/// A LiteLLM excerpt pricing gpt-4o-mini at $1 / $2 per million tokens (1 000 / 2 000
/// nano-dollars a token), with the real file's `sample_spec`, a prefixed name and a broken entry.
const LITELLM: &str = r#"{
    "sample_spec": {
        "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it.",
        "input_cost_per_token": 0.0000, "output_cost_per_token": 0.000,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "mode": "one of: chat, embedding, completion, image_generation"
    },
    "gpt-4o-mini": {
        "max_tokens": 16384, "max_input_tokens": 128000, "max_output_tokens": 16384,
        "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
        "cache_read_input_token_cost": 5e-07,
        "litellm_provider": "openai", "mode": "chat", "supports_function_calling": true
    },
    "mistral/mistral-large-latest": {
        "input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06,
        "litellm_provider": "mistral", "mode": "chat"
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0,
        "litellm_provider": "openai", "mode": "embedding"
    },
    "gpt-broken": {"input_cost_per_token": null, "litellm_provider": "openai", "mode": "chat"}
}"#;

/// A raw admin call (any status): (status, JSON body).
async fn admin_raw(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> TestResult<(u16, Value)> {
    let response = h
        .http
        .request(method, format!("{}{path}", h.url))
        .bearer_auth(ADMIN_PASSWORD)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// The step of one call (the agent's calls join one auto-run: its newest step).
async fn step_of(h: &Harness, token: &str, model: &str) -> TestResult<Value> {
    let reply = h
        .chat(
            token,
            json!({"model": model, "messages": user("price me")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let run_id = reply.run_id();
    h.assert_books_balance(&run_id).await?;
    let steps = h.steps(&run_id).await?;
    Ok(steps.last().cloned().ok_or("no step")?)
}

fn nanos(step: &Value) -> i64 {
    (step["cost_usd"].as_f64().unwrap_or(-1.0) * 1e9).round() as i64
}

fn tokens(step: &Value) -> (i64, i64) {
    let t = &step["tokens"];
    (
        t["input"].as_i64().unwrap_or(0),
        t["output"].as_i64().unwrap_or(0),
    )
}

#[tokio::test]
async fn an_imported_price_map_prices_the_next_call_and_survives_a_restart() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("priced").await?;
    let before = step_of(&h, &token, "gpt-4o-mini").await?;
    assert_eq!(before["price_version"], "builtin-2026-12");

    let (status, imported) =
        admin_raw(&h, reqwest::Method::POST, "/api/prices/import", LITELLM).await?;
    assert_eq!(status, 201, "{imported}");
    let version = imported["data"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        version.starts_with("litellm-") && version.len() == 20,
        "{imported}"
    );
    assert_eq!(imported["data"]["models"], 2, "{imported}");
    assert_eq!(imported["data"]["skipped"], 1, "{imported}");
    assert!(imported["data"]["imported_at"].is_string());

    let step = step_of(&h, &token, "gpt-4o-mini").await?;
    assert_eq!(step["price_version"], json!(version));
    let (input, output) = tokens(&step);
    assert!(input > 0 && output > 0, "{step}");
    assert_eq!(nanos(&step), input * 1_000 + output * 2_000, "{step}");
    let audit = h
        .admin_get(&format!(
            "/api/runs/{}/audit",
            step["run_id"].as_str().unwrap_or_default()
        ))
        .await?;
    let recorded = audit["data"]
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["kind"] == "step.recorded" && e["data"]["step_id"] == step["id"])
                .cloned()
        })
        .ok_or("no step.recorded event")?;
    assert_eq!(
        recorded["data"]["price_version"],
        json!(version),
        "{recorded}"
    );

    let shown = h
        .admin_get("/api/prices?model=mistral-large-latest")
        .await?;
    assert_eq!(shown["data"]["version"], json!(version));
    assert_eq!(shown["data"]["source"], "litellm");
    assert_eq!(shown["data"]["price"]["input_per_million"], 2.0, "{shown}");
    assert_eq!(shown["data"]["price"]["version"], json!(version));

    let (mock, dir, openai_key, anthropic_key, policy_id) = h.stop().await?;
    let mut h = harness::boot(mock, dir, "").await?;
    (h.openai_key, h.anthropic_key, h.policy_id) = (openai_key, anthropic_key, policy_id);
    let shown = h.admin_get("/api/prices").await?;
    assert_eq!(shown["data"]["version"], json!(version), "{shown}");
    let step = step_of(&h, &token, "gpt-4o-mini").await?;
    assert_eq!(step["price_version"], json!(version));
    let (input, output) = tokens(&step);
    assert_eq!(nanos(&step), input * 1_000 + output * 2_000, "{step}");
    Ok(())
}

#[tokio::test]
async fn a_file_that_is_not_a_price_map_is_refused_and_the_table_stays() -> TestResult {
    let h = harness::start().await?;
    for body in ["[1, 2, 3]", r#"{"allowed_models": ["gpt-4o"]}"#, "not json"] {
        let (status, refused) =
            admin_raw(&h, reqwest::Method::POST, "/api/prices/import", body).await?;
        assert_eq!(status, 400, "{body}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("LiteLLM") || message.contains("not JSON"),
            "{body}: {message}"
        );
    }
    let shown = h.admin_get("/api/prices").await?;
    assert_eq!(shown["data"]["version"], "builtin-2026-12");
    assert_eq!(shown["data"]["source"], "built-in");
    Ok(())
}

#[tokio::test]
async fn a_key_price_prices_a_model_no_table_knows() -> TestResult {
    let h = harness::start_with(Setup {
        allowed_models: json!(["gpt-4o-mini", "my-local-model"]),
        ..Setup::default()
    })
    .await?;
    let pricing = json!({"*": {"input_per_million": 3.0, "output_per_million": 5.0}});
    let key = h
        .admin_post(
            "/api/provider-keys",
            json!({"provider": "openai_compatible", "name": "local-vllm", "api_key": PROVIDER_SECRET,
                   "base_url": h.mock.base_url(), "pricing": pricing}),
        )
        .await?;
    let key_id = key["data"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        key["data"]["pricing"]["*"]["input_per_million"], 3.0,
        "{key}"
    );
    let got = h.admin_get(&format!("/api/provider-keys/{key_id}")).await?;
    assert_eq!(got["data"]["pricing"], key["data"]["pricing"]);

    let (_, token) = h.agent("self-hosted").await?;
    let step = step_of(&h, &token, "local-vllm/my-local-model").await?;
    assert_eq!(
        step["price_version"],
        json!(format!("key:{key_id}")),
        "{step}"
    );
    let (input, output) = tokens(&step);
    assert_eq!(nanos(&step), input * 3_000 + output * 5_000, "{step}");
    // The same model elsewhere has no price: the step says so.
    let unpriced = step_of(&h, &token, "my-local-model").await?;
    assert_eq!(unpriced["price_version"], Value::Null, "{unpriced}");
    assert_eq!(nanos(&unpriced), 0);

    let (status, refused) = admin_raw(
        &h,
        reqwest::Method::PUT,
        &format!("/api/provider-keys/{key_id}"),
        &json!({"pricing": {"*": {"input_per_million": -1.0, "output_per_million": 1.0}}})
            .to_string(),
    )
    .await?;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("pricing.*")),
        "{refused}"
    );
    let cleared = h
        .admin_put(
            &format!("/api/provider-keys/{key_id}"),
            json!({"pricing": null}),
        )
        .await?;
    assert_eq!(cleared["data"]["pricing"], Value::Null, "{cleared}");
    Ok(())
}

/// `rungate <args>` against the harness gateway, authenticated with the dashboard password.
async fn rungate(h: &Harness, args: &[&str]) -> TestResult<(bool, String, String)> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rungate"));
    command
        .args(["--url", h.url.as_str(), "--token", ADMIN_PASSWORD])
        .args(args)
        .current_dir(h.dir.path())
        .env_remove("RUNGATE_URL")
        .env_remove("RUNGATE_ADMIN_TOKEN")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output()).await??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn the_cli_imports_a_price_map_and_shows_the_table_in_use() -> TestResult {
    let h = harness::start().await?;
    let file = h.dir.path().join("model_prices_and_context_window.json");
    std::fs::write(&file, LITELLM)?;
    let file = file.display().to_string();
    let (ok, out, err) = rungate(&h, &["prices", "import", &file]).await?;
    assert!(ok, "{out}{err}");
    let version = h.admin_get("/api/prices").await?["data"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        out,
        format!(
            "Imported price table {version}: 2 models (1 entries skipped), in use from now on.\n"
        )
    );
    let (ok, out, err) = rungate(&h, &["prices", "show", "--model", "gpt-4o-mini"]).await?;
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with(&format!("Price table {version} (litellm, imported ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("gpt-4o-mini: input $1, output $2, cached input $0.5 per million tokens (priced by {version}).")),
        "{out}"
    );
    let broken = h.dir.path().join("broken.json");
    std::fs::write(&broken, "[]")?;
    let (ok, _, err) = rungate(&h, &["prices", "import", &broken.display().to_string()]).await?;
    assert!(!ok);
    assert!(err.contains("400") && err.contains("LiteLLM"), "{err}");
    Ok(())
}

#[tokio::test]
async fn each_failover_attempt_is_priced_by_its_own_key() -> TestResult {
    let h = harness::start().await?;
    let primary = mock_upstream::MockUpstream::start(mock_upstream::MockConfig {
        require_key: Some(PROVIDER_SECRET.into()),
        default_script: Some(json!({"status": 500})),
        ..mock_upstream::MockConfig::default()
    })
    .await?;
    let flaky = h
        .admin_post(
            "/api/provider-keys",
            json!({"provider": "openai", "name": "flaky-openai", "api_key": PROVIDER_SECRET,
                   "base_url": primary.base_url(),
                   "pricing": {"gpt-4o-mini": {"input_per_million": 1.0, "output_per_million": 1.0}}}),
        )
        .await?;
    let flaky_id = flaky["data"]["id"].as_str().ok_or("no key id")?.to_owned();
    h.admin_put(
        &format!("/api/provider-keys/{}", h.anthropic_key),
        json!({"pricing": {"*": {"input_per_million": 4.0, "output_per_million": 8.0}}}),
    )
    .await?;
    let routing = json!({"default_chain": ["anthropic"],
                         "model_map": {"gpt-4o-mini": {"anthropic": "claude-sonnet-4-5"}}});
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": "failover", "routing": routing}),
        )
        .await?;
    let created = h
        .admin_post(
            "/api/agents",
            json!({"name": "failing-over", "policy_id": policy["data"]["id"],
                   "provider_keys": {"openai": flaky_id, "anthropic": h.anthropic_key}}),
        )
        .await?;
    let token = created["data"]["api_key"].as_str().ok_or("no token")?;
    let reply = h
        .chat(
            token,
            json!({"model": "gpt-4o-mini", "messages": user("hello")}),
            &[],
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let run_id = reply.run_id();
    h.assert_books_balance(&run_id).await?;
    let steps = h.steps(&run_id).await?;
    let versions: Vec<&Value> = steps.iter().map(|s| &s["price_version"]).collect();
    assert_eq!(
        versions,
        [
            &json!(format!("key:{flaky_id}")),
            &json!(format!("key:{}", h.anthropic_key))
        ],
        "{steps:?}"
    );
    let answered = &steps[1];
    let (input, output) = tokens(answered);
    assert_eq!(
        nanos(answered),
        input * 4_000 + output * 8_000,
        "{answered}"
    );
    Ok(())
}
