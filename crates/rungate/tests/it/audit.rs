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
