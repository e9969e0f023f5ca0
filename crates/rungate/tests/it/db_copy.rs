//! `rungate db copy` as an operator runs it: the built binary copies a SQLite database that a
//! real gateway filled (agents, proxied calls, a held gate, webhook deliveries) into a fresh
//! PostgreSQL schema; every table arrives whole and each run's audit chain still verifies there.
//! A copy into a non-empty target is refused, and a copy that fails half-way leaves nothing.
//!
//! PostgreSQL and the skip-or-fail rule when it is not reachable come from `crate::pg`; each test
//! copies into a schema of its own and drops it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use rungate::store::RunReads as _;

use crate::harness::{self, TestResult, user};

/// Every table the copy moves, in its order.
const TABLES: &[&str] = &[
    "provider_keys",
    "policies",
    "policy_versions",
    "agents",
    "admin_tokens",
    "runs",
    "steps",
    "ledger",
    "audit_events",
    "gates",
    "webhooks",
    "webhook_deliveries",
];

/// What one `rungate db copy` did.
struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn db_copy(from: &Path, to: &str, schema: &str) -> TestResult<Outcome> {
    let from = from.to_str().ok_or("the temp path is not UTF-8")?;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rungate"))
        .args(["db", "copy", "--from", from, "--to", to, "--schema", schema])
        .env_remove("RUNGATE_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .await?;
    Ok(Outcome {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

async fn sqlite(path: &Path, read_only: bool) -> TestResult<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

async fn source_count(db: &SqlitePool, table: &str) -> TestResult<i64> {
    Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db)
        .await?)
}

async fn target_count(pg: &PgPool, schema: &str, table: &str) -> TestResult<i64> {
    Ok(
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.{table}"))
            .fetch_one(pg)
            .await?,
    )
}

/// A run's audit chain as stored, and the head its run row records.
type Chain = (Vec<rungate::audit::ChainedEvent>, rungate::audit::AuditHead);

type EventRow = (String, i64, String, String, String, i64, String, String);

fn chain_from(rows: Vec<EventRow>, head: (i64, Option<String>)) -> TestResult<Chain> {
    let mut events = Vec::with_capacity(rows.len());
    for (run_id, seq, kind, actor, data, at_ms, prev_hash, hash) in rows {
        events.push(rungate::audit::ChainedEvent {
            run_id,
            seq,
            kind,
            actor,
            data: serde_json::from_str(&data)?,
            at_ms,
            prev_hash,
            hash,
        });
    }
    Ok((
        events,
        rungate::audit::AuditHead {
            seq: head.0,
            hash: head.1,
        },
    ))
}

const EVENTS: &str = "SELECT run_id, seq, kind, actor, data, at, prev_hash, hash FROM";

async fn source_chain(db: &SqlitePool, run_id: &str) -> TestResult<Chain> {
    let rows = sqlx::query_as(&format!(
        "{EVENTS} audit_events WHERE run_id = ? ORDER BY seq"
    ))
    .bind(run_id)
    .fetch_all(db)
    .await?;
    let head = sqlx::query_as("SELECT audit_seq, audit_head FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_one(db)
        .await?;
    chain_from(rows, head)
}

async fn target_chain(pg: &PgPool, schema: &str, run_id: &str) -> TestResult<Chain> {
    let rows = sqlx::query_as(&format!(
        "{EVENTS} {schema}.audit_events WHERE run_id = $1 ORDER BY seq"
    ))
    .bind(run_id)
    .fetch_all(pg)
    .await?;
    let head = sqlx::query_as(&format!(
        "SELECT audit_seq, audit_head FROM {schema}.runs WHERE id = $1"
    ))
    .bind(run_id)
    .fetch_one(pg)
    .await?;
    chain_from(rows, head)
}

/// Fills a gateway's SQLite file through the product: an agent, proxied calls in two runs, a
/// proposed tool call held at a gate (its answer kept as a blob) and webhook deliveries that
/// could not be delivered. Returns the directory holding `rungate.db`.
async fn filled_database() -> TestResult<tempfile::TempDir> {
    let h = harness::start().await?;
    h.admin_post(
        "/api/webhooks",
        json!({"name": "ops", "url": "http://127.0.0.1:9/hook", "events": ["run.started"]}),
    )
    .await?;
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": "copied", "allowed_models": ["gpt-4o-mini"],
                   "gates": [{"id": "refund", "tool": "issue_refund"}]}),
        )
        .await?;
    let (_, token) = h
        .agent_with(json!({"name": "copied-agent", "policy_id": policy["data"]["id"]}))
        .await?;
    for text in ["one", "two"] {
        let reply = h
            .chat(
                &token,
                json!({"model": "gpt-4o-mini", "messages": user(text)}),
                &[("x-rungate-run-id", "copied-run")],
            )
            .await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let held = h
        .chat(
            &token,
            json!({"model": "gpt-4o-mini", "messages": user("refund the order"),
                   "tools": [{"type": "function", "function": {"name": "issue_refund", "parameters": {"type": "object"}}}],
                   "mock": {"tool_call": {"name": "issue_refund", "arguments": {"amount_usd": 750}}}}),
            &[("x-rungate-run-id", "gated-run")],
        )
        .await?;
    assert_eq!(held.status, 202, "{}", held.text);
    h.assert_books_balance("copied-run").await?;
    h.assert_books_balance("gated-run").await?;
    let (_, dir, ..) = h.stop().await?;
    Ok(dir)
}

#[tokio::test]
async fn a_gateways_sqlite_database_arrives_whole_in_postgres_and_its_audit_chains_still_verify()
-> TestResult {
    if harness::reads_the_sqlite_file(
        "a_gateways_sqlite_database_arrives_whole_in_postgres_and_its_audit_chains_still_verify",
    ) {
        return Ok(());
    }
    let Some(schema) = crate::pg::schema("copy").await? else {
        return Ok(());
    };
    let checked = match filled_database().await {
        Ok(dir) => {
            let path = dir.path().join("rungate.db");
            copy_and_compare(&path, &schema.admin, &schema.url, &schema.name).await
        }
        Err(err) => Err(err),
    };
    schema.drop().await?;
    checked
}

async fn copy_and_compare(path: &Path, pg: &PgPool, url: &str, schema: &str) -> TestResult {
    let copied = db_copy(path, url, schema).await?;
    assert!(copied.ok, "db copy failed: {}", copied.stderr);
    assert!(
        copied.stdout.contains(schema) && copied.stdout.contains("total"),
        "the summary names the target and totals the rows: {}",
        copied.stdout
    );

    let db = sqlite(path, true).await?;
    for table in TABLES {
        let source = source_count(&db, table).await?;
        let target = target_count(pg, schema, table).await?;
        assert_eq!(source, target, "rows in {table}");
        let line = copied
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .ok_or_else(|| format!("no summary line for {table}: {}", copied.stdout))?;
        assert_eq!(
            line.split_whitespace().last(),
            Some(source.to_string().as_str()),
            "summary line {line:?}"
        );
    }
    for table in [
        "provider_keys",
        "policies",
        "policy_versions",
        "agents",
        "runs",
        "steps",
        "ledger",
        "audit_events",
        "gates",
        "webhooks",
        "webhook_deliveries",
    ] {
        assert!(
            source_count(&db, table).await? > 0,
            "the scenario left rows in {table}, so its copy is tested"
        );
    }

    // Values arrive unchanged, NULLs included: the run rows, the held answer (a blob) and the
    // step bodies.
    type RunRow = (
        String,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        i64,
        Option<String>,
        String,
    );
    let run_columns = "id, spend_nanos, steps_count, ended_at, budget_limit_nanos, audit_seq, audit_head, metadata";
    let source_runs: Vec<RunRow> =
        sqlx::query_as(&format!("SELECT {run_columns} FROM runs ORDER BY id"))
            .fetch_all(&db)
            .await?;
    let target_runs: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {run_columns} FROM {schema}.runs ORDER BY id"
    ))
    .fetch_all(pg)
    .await?;
    assert_eq!(source_runs, target_runs);
    type GateRow = (String, String, Option<i64>, Option<Vec<u8>>, Option<String>);
    let gate_columns = "id, status, held_status, held_body, decided_by";
    let source_gates: Vec<GateRow> =
        sqlx::query_as(&format!("SELECT {gate_columns} FROM gates ORDER BY id"))
            .fetch_all(&db)
            .await?;
    let target_gates: Vec<GateRow> = sqlx::query_as(&format!(
        "SELECT {gate_columns} FROM {schema}.gates ORDER BY id"
    ))
    .fetch_all(pg)
    .await?;
    assert_eq!(source_gates, target_gates);
    assert!(
        source_gates
            .iter()
            .any(|g| g.3.as_ref().is_some_and(|body| !body.is_empty())),
        "the held gate keeps its answer: {source_gates:?}"
    );
    type StepRow = (String, String, Option<String>, Option<String>, i64);
    let step_columns = "run_id, id, request, response, cost_nanos";
    let source_steps: Vec<StepRow> = sqlx::query_as(&format!(
        "SELECT {step_columns} FROM steps ORDER BY run_id, id"
    ))
    .fetch_all(&db)
    .await?;
    let target_steps: Vec<StepRow> = sqlx::query_as(&format!(
        "SELECT {step_columns} FROM {schema}.steps ORDER BY run_id, id"
    ))
    .fetch_all(pg)
    .await?;
    assert_eq!(source_steps, target_steps);

    // Every run's chain verifies in the copy, and is event for event the source's: read by SQL,
    // and read the way a gateway on PostgreSQL reads it (its RunStore).
    let store = rungate::store::postgres::PgStore::connect(&rungate::store::postgres::PgTarget {
        url: url.to_owned(),
        schema: Some(schema.to_owned()),
        max_connections: 2,
        synchronous_commit: true,
    })
    .await?;
    for (run_id, ..) in &source_runs {
        let id = rungate::run::RunId(run_id.clone());
        let (source_events, _) = source_chain(&db, run_id).await?;
        let events = store.audit_events(&id).await?;
        let head = store.audit_head(&id).await?;
        assert_eq!(
            rungate::audit::verify(&events, &head),
            Ok(()),
            "run {run_id} through the store"
        );
        assert_eq!(events, source_events, "run {run_id} through the store");
    }
    store.pool().close().await;
    for (run_id, ..) in &source_runs {
        let (source_events, source_head) = source_chain(&db, run_id).await?;
        let (events, head) = target_chain(pg, schema, run_id).await?;
        assert!(!events.is_empty(), "run {run_id} has an audit chain");
        assert_eq!(
            rungate::audit::verify(&events, &head),
            Ok(()),
            "run {run_id}"
        );
        assert_eq!(events, source_events, "run {run_id}");
        assert_eq!(head, source_head, "run {run_id}");
    }
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn a_copy_into_a_non_empty_target_is_refused_and_a_failed_copy_leaves_nothing() -> TestResult
{
    let Some(schema) = crate::pg::schema("copy").await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rungate.db");
    drop(rungate::store::sqlite::SqliteStore::open(&path).await?);
    let db = sqlite(&path, false).await?;
    sqlx::query(
        "INSERT INTO agents (id, name, token_hash, token_prefix, provider_keys, status, metadata, created_at, updated_at) \
         VALUES ('agt_1', 'one', 'hash', 'rg_', '{}', 'active', '{}', 1, 1)",
    )
    .execute(&db)
    .await?;
    // `auto` holds text where the copy expects an integer: the copy fails at `runs`, after
    // `agents` went in.
    sqlx::query(
        "INSERT INTO runs (id, agent_id, team, status, auto, started_at, last_activity_at, metadata) \
         VALUES ('run_1', 'agt_1', 'default', 'active', 'yes', 1, 1, '{}')",
    )
    .execute(&db)
    .await?;
    let checked = refusals(&db, &path, &schema.admin, &schema.url, &schema.name).await;
    db.close().await;
    schema.drop().await?;
    checked
}

async fn refusals(
    db: &SqlitePool,
    path: &Path,
    pg: &PgPool,
    url: &str,
    schema: &str,
) -> TestResult {
    let failed = db_copy(path, url, schema).await?;
    assert!(!failed.ok, "a bad value fails the copy: {}", failed.stdout);
    assert!(
        failed.stderr.contains("copying table runs") && failed.stderr.contains("auto"),
        "the error names the table and column: {}",
        failed.stderr
    );
    for table in TABLES {
        assert_eq!(
            target_count(pg, schema, table).await?,
            0,
            "nothing of the failed copy is left in {table}"
        );
    }

    sqlx::query("UPDATE runs SET auto = 1").execute(db).await?;
    let copied = db_copy(path, url, schema).await?;
    assert!(copied.ok, "the fixed source copies: {}", copied.stderr);
    assert_eq!(target_count(pg, schema, "agents").await?, 1);
    assert_eq!(target_count(pg, schema, "runs").await?, 1);

    let again = db_copy(path, url, schema).await?;
    assert!(!again.ok, "a second copy into the same schema is refused");
    assert!(
        again.stderr.contains("already has rows in agents, runs"),
        "the refusal names the tables: {}",
        again.stderr
    );
    assert_eq!(
        target_count(pg, schema, "agents").await?,
        1,
        "nothing added"
    );
    Ok(())
}

#[tokio::test]
async fn a_source_behind_on_migrations_is_refused_with_how_to_migrate_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("old.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(&db)
    .await?;
    sqlx::query("INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0)")
        .execute(&db)
        .await?;
    db.close().await;
    // The source is checked before the target is touched, so no server is needed.
    let refused = db_copy(&path, "postgres://nobody@127.0.0.1:1/none", "unused").await?;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("schema version 3") && refused.stderr.contains("rungate migrate"),
        "{}",
        refused.stderr
    );
    Ok(())
}
