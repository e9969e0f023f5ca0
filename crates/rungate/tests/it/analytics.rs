//! Analytics and retention as an operator uses them: the figures match the calls that were made,
//! and cleanup removes exactly the runs that ended before the cut-off, with everything they own.

use serde_json::{Value, json};

use crate::harness::{self, Harness, TestResult, user};

async fn figure(h: &Harness, query: &str) -> TestResult<Vec<Value>> {
    let body = h.admin_get(&format!("/api/analytics/{query}")).await?;
    Ok(body["data"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn figures_are_computed_from_the_recorded_steps() -> TestResult {
    let h = harness::start().await?;
    let (cheap_id, cheap) = h.agent("cheap").await?;
    let (dear_id, dear) = h.agent("dear").await?;
    let call = |latency: u64, status: Option<u16>| {
        let mut mock =
            json!({"latency_ms": latency, "usage": {"input_tokens": 1000, "output_tokens": 500}});
        if let Some(status) = status {
            mock["status"] = json!(status);
        }
        json!({"model": "gpt-4o-mini", "messages": user("hi"), "mock": mock})
    };
    for latency in [10, 20, 30] {
        assert_eq!(h.chat(&cheap, call(latency, None), &[]).await?.status, 200);
    }
    let dear_call = json!({"model": "gpt-4o", "messages": user("hi"), "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}});
    assert_eq!(h.chat(&dear, dear_call, &[]).await?.status, 200);
    assert_eq!(h.chat(&dear, call(0, Some(500)), &[]).await?.status, 502);

    let costs = figure(&h, "costs?group_by=agent").await?;
    assert_eq!(costs[0]["group"], dear_id, "largest spend first: {costs:?}");
    assert_eq!(costs[1]["group"], cheap_id);
    assert!((costs[1]["cost_usd"].as_f64().unwrap_or_default() - 3.0 * 0.00045).abs() < 1e-12);
    assert_eq!(costs[1]["steps"], 3);

    let latency = figure(&h, &format!("latency?group_by=agent&agent_id={cheap_id}")).await?;
    assert_eq!(latency.len(), 1);
    let p50 = latency[0]["p50_ms"].as_u64().unwrap_or_default();
    let p99 = latency[0]["p99_ms"].as_u64().unwrap_or_default();
    assert!(
        (20..200).contains(&p50) && p99 >= 30 && p99 >= p50,
        "{latency:?}"
    );

    let errors = figure(&h, "errors?group_by=agent").await?;
    let dear_errors = errors
        .iter()
        .find(|r| r["group"] == dear_id)
        .ok_or("dear")?;
    assert_eq!(
        (dear_errors["total"].clone(), dear_errors["errors"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(dear_errors["error_rate"], 0.5);

    let throughput = figure(&h, "throughput?granularity=day").await?;
    assert_eq!(
        throughput
            .iter()
            .map(|r| r["steps"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        5
    );
    let top = figure(&h, "top?metric=cost&entity=model&limit=1").await?;
    assert_eq!(
        top,
        vec![json!({"group": "gpt-4o", "metric": "cost", "value": costs[0]["cost_usd"]})]
    );
    let bad = h
        .http
        .get(format!("{}/api/analytics/costs?group_by=vibes", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    Ok(())
}

#[tokio::test]
async fn cleanup_removes_only_runs_that_ended_before_the_cutoff() -> TestResult {
    if harness::reads_the_sqlite_file("cleanup_removes_only_runs_that_ended_before_the_cutoff") {
        return Ok(());
    }
    let h = harness::start().await?;
    let (_, token) = h.agent("retained").await?;
    for run in ["old-run", "recent-run", "open-run"] {
        let reply = h
            .chat(
                &token,
                json!({"model": "gpt-4o-mini", "messages": user("hi")}),
                &[("x-rungate-run-id", run)],
            )
            .await?;
        assert_eq!(reply.status, 200);
    }
    for run in ["old-run", "recent-run"] {
        assert_eq!(
            h.post_raw(
                &format!("/v1/runs/{run}/complete"),
                &token,
                b"{}".to_vec(),
                &[]
            )
            .await?
            .status,
            200
        );
    }
    // Age one run: it ended forty days ago.
    let db = rusqlite::Connection::open(h.dir.path().join("rungate.db"))?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    let forty_days_ago = rungate::run::now_ms() - 40 * 86_400_000;
    db.execute(
        "UPDATE runs SET ended_at = ?1 WHERE id = 'old-run'",
        [forty_days_ago],
    )?;

    let preview = h
        .admin_get("/api/analytics/cleanup-preview?days=30")
        .await?["data"]
        .clone();
    assert_eq!(preview["would_delete"]["runs"], 1, "{preview}");
    assert_eq!(preview["would_delete"]["steps"], 1);
    assert!(
        preview["would_delete"]["audit_events"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    );
    assert_eq!(
        h.admin_get("/api/runs/old-run").await?["data"]["id"],
        "old-run",
        "a preview deletes nothing"
    );

    let done = h
        .admin_post("/api/analytics/cleanup", json!({"days": 30}))
        .await?["data"]
        .clone();
    assert_eq!(done["deleted"], preview["would_delete"]);
    let gone = h
        .http
        .get(format!("{}/api/runs/old-run", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .send()
        .await?;
    assert_eq!(gone.status(), 404);
    for kept in ["recent-run", "open-run"] {
        h.assert_books_balance(kept).await?;
    }
    let zero = h
        .http
        .post(format!("{}/api/analytics/cleanup", h.url))
        .bearer_auth(harness::ADMIN_PASSWORD)
        .json(&json!({"days": 0}))
        .send()
        .await?;
    assert_eq!(zero.status(), 400);
    Ok(())
}
