//! The audit chain as an operator relies on it: a run's record verifies untouched, and any edit
//! made behind the gateway's back — a changed row, a deleted one (the last included), two swapped —
//! makes `verify` fail at the first bad event. The tampering goes straight at the SQLite file.

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::harness::{self, Harness, TestResult, user};

const RUN: &str = "audited";
const COLUMNS: &str = "run_id, seq, kind, actor, data, at, prev_hash, hash";

type Row = (String, i64, String, String, String, i64, String, String);

fn database(h: &Harness) -> TestResult<Connection> {
    let conn = Connection::open(h.dir.path().join("rungate.db"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn row(conn: &Connection, seq: i64) -> TestResult<Row> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM audit_events WHERE run_id = ?1 AND seq = ?2"),
        params![RUN, seq],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )?)
}

fn put(conn: &Connection, r: &Row) -> TestResult {
    conn.execute(
        &format!("INSERT OR REPLACE INTO audit_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7],
    )?;
    Ok(())
}

fn delete(conn: &Connection, seq: i64) -> TestResult {
    conn.execute(
        "DELETE FROM audit_events WHERE run_id = ?1 AND seq = ?2",
        params![RUN, seq],
    )?;
    Ok(())
}

async fn verify(h: &Harness) -> TestResult<Value> {
    Ok(h.admin_get(&format!("/api/runs/{RUN}/audit/verify"))
        .await?["data"]
        .clone())
}

async fn broken_at(h: &Harness) -> TestResult<(i64, String)> {
    let v = verify(h).await?;
    assert_eq!(v["valid"], false, "{v}");
    Ok((
        v["broken_at_seq"].as_i64().ok_or("seq")?,
        v["reason"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test]
async fn any_edit_behind_the_gateways_back_breaks_verification_at_the_first_bad_event() -> TestResult
{
    if harness::reads_the_sqlite_file(
        "any_edit_behind_the_gateways_back_breaks_verification_at_the_first_bad_event",
    ) {
        return Ok(());
    }
    let h = harness::start().await?;
    let (_, token) = h.agent("audited-agent").await?;
    for text in ["one", "two", "three"] {
        let reply = h
            .chat(
                &token,
                json!({"model": "gpt-4o-mini", "messages": user(text)}),
                &[("x-rungate-run-id", RUN)],
            )
            .await?;
        assert_eq!(reply.status, 200);
    }
    let untouched = verify(&h).await?;
    assert_eq!(untouched["valid"], true, "{untouched}");
    let last = untouched["events"].as_i64().ok_or("events")?;
    assert!(last >= 4, "run.started and three steps: {untouched}");
    let conn = database(&h)?;

    // An edited row: the cost of step 2 zeroed.
    let original = row(&conn, 2)?;
    let mut edited = original.clone();
    edited.4 = edited
        .4
        .replace("\"cost_nanos\":", "\"cost_nanos\":0,\"was\":");
    put(&conn, &edited)?;
    assert_eq!(broken_at(&h).await?.0, 2);
    put(&conn, &original)?;
    assert_eq!(verify(&h).await?["valid"], true, "restored");

    // A deleted row in the middle.
    let third = row(&conn, 3)?;
    delete(&conn, 3)?;
    assert_eq!(broken_at(&h).await?, (3, "event missing".to_owned()));
    put(&conn, &third)?;

    // Two rows swapped.
    let (a, b) = (row(&conn, 2)?, row(&conn, 3)?);
    let (mut a2, mut b2) = (b.clone(), a.clone());
    (a2.1, b2.1) = (2, 3);
    put(&conn, &a2)?;
    put(&conn, &b2)?;
    assert_eq!(broken_at(&h).await?.0, 2);
    put(&conn, &a)?;
    put(&conn, &b)?;

    // The last row deleted: no later hash covers it, the run's recorded head does.
    let tail = row(&conn, last)?;
    delete(&conn, last)?;
    assert_eq!(broken_at(&h).await?.0, last);
    put(&conn, &tail)?;

    assert_eq!(verify(&h).await?["valid"], true, "every edit undone");
    Ok(())
}

#[tokio::test]
async fn a_scripted_run_is_reconstructed_span_by_span_from_its_trace() -> TestResult {
    let h = harness::start().await?;
    let policy = h
        .admin_post("/api/policies", json!({"name": "traced", "allowed_models": ["gpt-4o-mini"],
            "gates": [{"id": "refund", "tool": "issue_refund"}], "budget": {"hard_limit_usd": 0.01}}))
        .await?;
    let (_, token) = h
        .agent_with(json!({"name": "traced-agent", "policy_id": policy["data"]["id"]}))
        .await?;
    let approver = h
        .admin_post(
            "/api/admin-tokens",
            json!({"name": "alice", "scopes": ["approve"]}),
        )
        .await?;
    let (alice_id, alice_token) = (
        approver["data"]["id"].as_str().ok_or("id")?.to_owned(),
        approver["data"]["token"]
            .as_str()
            .ok_or("token")?
            .to_owned(),
    );
    let run = [("x-rungate-run-id", "traced")];
    let priced = |text: &str| {
        json!({"model": "gpt-4o-mini", "messages": user(text), "max_tokens": 600,
               "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}})
    };
    assert_eq!(h.chat(&token, priced("first"), &run).await?.status, 200);
    assert_eq!(h.chat(&token, priced("second"), &run).await?.status, 200);
    let blocked = h
        .chat(
            &token,
            json!({"model": "gpt-4o", "messages": user("x")}),
            &run,
        )
        .await?;
    assert_eq!(blocked.status, 403);
    let report = |body: Value| {
        h.post_raw(
            "/v1/runs/traced/steps",
            &token,
            body.to_string().into_bytes(),
            &[],
        )
    };
    assert_eq!(
        report(json!({"type": "tool_call", "name": "search", "cost_usd": 0.001, "latency_ms": 12}))
            .await?
            .status,
        201
    );
    let refund =
        json!({"type": "tool_call", "name": "issue_refund", "request": {"amount_usd": 90}});
    let asked = report(refund.clone()).await?;
    assert_eq!(asked.status, 202);
    let gate_id = asked.json()["approval_requests"][0]["id"]
        .as_str()
        .ok_or("gate")?
        .to_owned();
    let approved = h
        .http
        .post(format!("{}/api/approval-requests/{gate_id}/approve", h.url))
        .bearer_auth(&alice_token)
        .json(&json!({"reason": "refund ok"}))
        .send()
        .await?;
    assert_eq!(approved.status(), 200);
    assert_eq!(report(refund).await?.status, 201);
    let over = json!({"model": "gpt-4o-mini", "messages": user("big"), "max_tokens": 100000});
    assert_eq!(h.chat(&token, over, &run).await?.status, 402);

    let trace = h.admin_get("/api/runs/traced/trace").await?["data"].clone();
    let spans = trace["spans"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "run.init",
            "llm.gpt-4o-mini",
            "llm.gpt-4o-mini",
            "llm.gpt-4o",
            "tool.search",
            "gate.refund",
            "tool.issue_refund",
            "llm.gpt-4o-mini"
        ],
        "{trace}"
    );
    let attr = |i: usize, key: &str| spans[i]["attributes"][key].clone();
    let steps = h.steps("traced").await?;
    for (span, step) in [(1, 0), (2, 1)] {
        assert_eq!(spans[span]["status"], "ok");
        assert_eq!(
            attr(span, "gen_ai.usage.cost.amount"),
            steps[step]["cost_usd"]
        );
        assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 1000);
        assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 500);
        assert_eq!(attr(span, "gen_ai.request.model"), "gpt-4o-mini");
        assert_eq!(attr(span, "gen_ai.conversation.id"), "traced");
    }
    assert_eq!(
        (spans[3]["status"].clone(), attr(3, "rungate.block.code")),
        (json!("blocked"), json!("model_not_allowed"))
    );
    assert_eq!(attr(4, "gen_ai.usage.cost.amount"), 0.001);
    assert_eq!(
        attr(5, "rungate.gate.decided_by"),
        format!("admin:{alice_id}")
    );
    assert_eq!(attr(5, "rungate.gate.reason"), "refund ok");
    assert_eq!(attr(5, "rungate.gate.status"), "approved");
    assert_eq!(
        (spans[7]["status"].clone(), attr(7, "rungate.block.code")),
        (json!("blocked"), json!("budget_exceeded"))
    );
    let total: f64 = spans[1..]
        .iter()
        .filter_map(|s| s["attributes"]["gen_ai.usage.cost.amount"].as_f64())
        .sum();
    let spend = h.run("traced").await?["total_cost_usd"]
        .as_f64()
        .ok_or("spend")?;
    assert!(
        (total - spend).abs() < 1e-12,
        "the spans add up to the run's spend: {total} vs {spend}"
    );
    assert_eq!(attr(0, "gen_ai.usage.cost.amount").as_f64(), Some(spend));
    assert!(
        spans[1..]
            .iter()
            .all(|s| s["parent_span_id"] == spans[0]["span_id"]
                && s["trace_id"] == trace["trace_id"])
    );
    Ok(())
}

#[tokio::test]
async fn a_closed_runs_trace_reaches_an_otlp_http_collector_with_genai_attributes() -> TestResult {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message as _;
    use std::sync::{Arc, Mutex};

    /// Content type and body of each export the collector received.
    type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Exports = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    sink.lock().unwrap().push((kind, body.to_vec()));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, collector).await });
    let h = harness::start_with(harness::Setup {
        extra_yaml: format!("otlp_endpoint: {endpoint}\n"),
        ..harness::Setup::default()
    })
    .await?;
    let (_, token) = h.agent("exported").await?;
    let run = [("x-rungate-run-id", "exported")];
    let call = json!({"model": "gpt-4o-mini", "messages": user("hi"),
                      "mock": {"usage": {"input_tokens": 1000, "output_tokens": 500}}});
    assert_eq!(h.chat(&token, call.clone(), &run).await?.status, 200);
    assert_eq!(h.chat(&token, call, &run).await?.status, 200);
    let closed = h
        .post_raw("/v1/runs/exported/complete", &token, b"{}".to_vec(), &[])
        .await?;
    assert_eq!(closed.status, 200);
    h.eventually("the collector receives the trace", || async {
        Ok(!received.lock().unwrap().is_empty())
    })
    .await?;

    let (content_type, body) = received.lock().unwrap()[0].clone();
    assert_eq!(content_type, "application/x-protobuf");
    let request = ExportTraceServiceRequest::decode(body.as_slice())?;
    let spans = &request.resource_spans[0].scope_spans[0].spans;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["run.init", "llm.gpt-4o-mini", "llm.gpt-4o-mini"]);
    let attr = |span: usize, key: &str| {
        spans[span]
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    for llm in [1, 2] {
        assert_eq!(
            attr(llm, "gen_ai.conversation.id"),
            Some(Any::StringValue("exported".into()))
        );
        assert_eq!(
            attr(llm, "gen_ai.request.model"),
            Some(Any::StringValue("gpt-4o-mini".into()))
        );
        assert_eq!(
            attr(llm, "gen_ai.usage.input_tokens"),
            Some(Any::IntValue(1000))
        );
        assert_eq!(
            attr(llm, "gen_ai.usage.output_tokens"),
            Some(Any::IntValue(500))
        );
        assert_eq!(
            attr(llm, "gen_ai.usage.cost.currency"),
            Some(Any::StringValue("USD".into()))
        );
        assert_eq!(
            attr(llm, "gen_ai.usage.cost.amount"),
            Some(Any::DoubleValue(0.00045))
        );
        assert_eq!(spans[llm].trace_id.len(), 16);
        assert_eq!(spans[llm].parent_span_id, spans[0].span_id);
        assert!(spans[llm].end_time_unix_nano >= spans[llm].start_time_unix_nano);
    }
    Ok(())
}
