use serde_json::json;

use crate::harness::{self, TestResult, user};

#[tokio::test]
async fn admin_scopes_are_enforced_and_agent_tokens_never_work_on_the_admin_api() -> TestResult {
    let h = harness::start().await?;
    let (_, agent_token) = h.agent("nosy").await?;
    let as_agent = h
        .http
        .get(format!("{}/api/runs", h.url))
        .bearer_auth(&agent_token)
        .send()
        .await?;
    assert_eq!(as_agent.status(), 401);
    let read = h
        .admin_post(
            "/api/admin-tokens",
            json!({"name": "viewer", "scopes": ["read"]}),
        )
        .await?;
    let read_token = read["data"]["token"]
        .as_str()
        .ok_or("token shown once")?
        .to_owned();
    assert!(read_token.starts_with("rg_adm_"));
    let listed = h
        .http
        .get(format!("{}/api/runs", h.url))
        .bearer_auth(&read_token)
        .send()
        .await?;
    assert_eq!(listed.status(), 200);
    let write = h
        .http
        .post(format!("{}/api/agents", h.url))
        .bearer_auth(&read_token)
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_eq!(write.status(), 403);
    let body: serde_json::Value = write.json().await?;
    assert_eq!(
        body["error"]["message"],
        "Insufficient scope. Required: write"
    );
    let id = read["data"]["id"].as_str().unwrap_or_default();
    h.admin_post(&format!("/api/admin-tokens/{id}/revoke"), json!({}))
        .await?;
    let revoked = h
        .http
        .get(format!("{}/api/runs", h.url))
        .bearer_auth(&read_token)
        .send()
        .await?;
    assert_eq!(revoked.status(), 401);
    Ok(())
}

#[tokio::test]
async fn provider_keys_are_encrypted_at_rest_and_never_returned() -> TestResult {
    let h = harness::start().await?;
    let listed = h.admin_get("/api/provider-keys").await?;
    assert_eq!(listed["total"], 2);
    assert!(!listed.to_string().contains(harness::PROVIDER_SECRET));
    assert_eq!(listed["data"][0]["key_suffix"], "...cret");
    let needle = harness::PROVIDER_SECRET.as_bytes();
    let stored = h.stored_bytes().await?;
    let name = b"mock-openai";
    assert!(
        stored
            .iter()
            .any(|bytes| bytes.windows(name.len()).any(|w| w == name)),
        "the search reads the stored keys"
    );
    for bytes in stored {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "provider secret stored in clear"
        );
    }
    Ok(())
}

#[tokio::test]
async fn agent_tokens_are_stored_hashed_and_rotation_invalidates_the_old_one() -> TestResult {
    let h = harness::start().await?;
    let (id, token) = h.agent("rotator").await?;
    for bytes in h.stored_bytes().await? {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "agent token stored in clear"
        );
    }
    let ok = json!({"model": "gpt-4o-mini", "messages": user("hi")});
    assert_eq!(h.chat(&token, ok.clone(), &[]).await?.status, 200);
    let rotated = h
        .admin_post(&format!("/api/agents/{id}/rotate-key"), json!({}))
        .await?;
    let new_token = rotated["data"]["api_key"]
        .as_str()
        .ok_or("new key")?
        .to_owned();
    assert_eq!(h.chat(&token, ok.clone(), &[]).await?.status, 401);
    assert_eq!(h.chat(&new_token, ok, &[]).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn policies_are_versioned_and_runs_keep_their_pinned_version() -> TestResult {
    let h = harness::start().await?;
    let (_, token) = h.agent("pinned").await?;
    h.chat(
        &token,
        json!({"model": "gpt-4o", "messages": user("hi")}),
        &[("x-rungate-run-id", "pin-1")],
    )
    .await?;
    let updated = h
        .admin_put(
            &format!("/api/policies/{}", h.policy_id),
            json!({"allowed_models": ["gpt-4o-mini"]}),
        )
        .await?;
    assert_eq!(updated["data"]["version"], 2);
    let versions = h
        .admin_get(&format!("/api/policies/{}/versions", h.policy_id))
        .await?;
    assert_eq!(versions["total"], 2);
    // The running run keeps version 1, which allows gpt-4o; a new run gets version 2.
    assert_eq!(
        h.chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("hi")}),
            &[("x-rungate-run-id", "pin-1")]
        )
        .await?
        .status,
        200
    );
    let fresh = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("hi")}),
            &[("x-rungate-run-id", "pin-2")],
        )
        .await?;
    assert_eq!(fresh.status, 403);
    let typo = h
        .http
        .put(format!("{}/api/policies/{}", h.url, h.policy_id))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({"budgett": {}}))
        .send()
        .await?;
    assert_eq!(typo.status(), 400);
    let body: serde_json::Value = typo.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("budgett")
    );
    Ok(())
}

#[tokio::test]
async fn health_metrics_and_openapi_are_served() -> TestResult {
    let h = harness::start().await?;
    let health: serde_json::Value = h
        .http
        .get(format!("{}/health", h.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health, json!({"status": "healthy"}));
    let (_, token) = h.agent("metered").await?;
    h.chat(
        &token,
        json!({"model": "gpt-4o-mini", "messages": user("hi")}),
        &[],
    )
    .await?;
    let metrics = h
        .http
        .get(format!("{}/metrics", h.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("rungate_steps_total{provider=\"openai\",status=\"success\"} 1"),
        "{metrics}"
    );
    let openapi: serde_json::Value = h
        .http
        .get(format!("{}/openapi.json", h.url))
        .send()
        .await?
        .json()
        .await?;
    for path in [
        "/v1/chat/completions",
        "/v1/messages",
        "/api/agents",
        "/api/runs/{id}/stop",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    Ok(())
}

#[tokio::test]
async fn lists_page_newest_first_and_bad_paging_is_a_json_400() -> TestResult {
    let h = harness::start().await?;
    let (agent_id, token) = h.agent("pager").await?;
    for id in ["page-1", "page-2", "page-3"] {
        h.chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("hi")}),
            &[("x-rungate-run-id", id)],
        )
        .await?;
    }
    let first = h
        .admin_get(&format!("/api/runs?agent_id={agent_id}&limit=1"))
        .await?;
    assert_eq!(first["total"], 3);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["data"][0]["id"], "page-3", "newest first");
    let second = h
        .admin_get(&format!("/api/runs?agent_id={agent_id}&limit=1&offset=1"))
        .await?;
    assert_eq!(second["data"][0]["id"], "page-2");
    let bad = h
        .http
        .get(format!("{}/api/runs?limit=lots", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await?;
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lots")
    );
    Ok(())
}
