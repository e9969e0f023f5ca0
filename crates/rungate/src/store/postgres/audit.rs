//! Appending to a run's audit chain inside a PostgreSQL transaction. The chain's head lives on
//! the run's row, and every append starts by locking that row (`FOR UPDATE`), so appends from
//! different gateways to one run are serialised by the database and the chain stays a chain.
//! Lock order is always the run row first: every transaction that touches a run's gates, holds
//! or steps takes it before anything else, so two of them cannot deadlock.

use sqlx::{PgConnection, Row};

use crate::audit::{self, AuditEvent, GENESIS};
use crate::store::{StoreError, StoreResult};

/// Where a run's chain ends, read under the run's row lock.
pub(super) struct Head {
    pub seq: i64,
    pub hash: String,
}

/// Locks the run's row for this transaction and returns its chain head; `NotFound` when the
/// run does not exist.
pub(super) async fn lock_run(conn: &mut PgConnection, run_id: &str) -> StoreResult<Head> {
    let row = sqlx::query("SELECT audit_seq, audit_head FROM runs WHERE id = $1 FOR UPDATE")
        .bind(run_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Head {
        seq: row.try_get(0)?,
        hash: row
            .try_get::<Option<String>, _>(1)?
            .unwrap_or_else(|| GENESIS.to_owned()),
    })
}

/// The rows `events` add to the chain after `head`, ready for one `UNNEST` insert.
pub(super) struct Chained {
    pub seqs: Vec<i64>,
    pub kinds: Vec<String>,
    pub actors: Vec<String>,
    pub data: Vec<String>,
    pub ats: Vec<i64>,
    pub prevs: Vec<String>,
    pub hashes: Vec<String>,
    /// The new head.
    pub head: Head,
}

/// Hashes `events` onto the chain after `head` (each hash covers the previous one).
pub(super) fn chain(run_id: &str, head: Head, events: &[AuditEvent]) -> Chained {
    let mut chained = Chained {
        seqs: Vec::with_capacity(events.len()),
        kinds: Vec::with_capacity(events.len()),
        actors: Vec::with_capacity(events.len()),
        data: Vec::with_capacity(events.len()),
        ats: Vec::with_capacity(events.len()),
        prevs: Vec::with_capacity(events.len()),
        hashes: Vec::with_capacity(events.len()),
        head,
    };
    for event in events {
        let seq = chained.head.seq + 1;
        let data = event.data.to_string();
        let body =
            audit::canonical_with_data(run_id, seq, event.kind, &event.actor, &data, event.at_ms);
        let hash = audit::chain(&chained.head.hash, &body);
        chained.seqs.push(seq);
        chained.kinds.push(event.kind.to_owned());
        chained.actors.push(event.actor.clone());
        chained.data.push(data);
        chained.ats.push(event.at_ms);
        chained
            .prevs
            .push(std::mem::replace(&mut chained.head.hash, hash.clone()));
        chained.hashes.push(hash);
        chained.head.seq = seq;
    }
    chained
}

/// Inserts chained events; `$1` run id, `$2..$8` the arrays of [`Chained`].
pub(super) const INSERT_EVENTS: &str = "INSERT INTO audit_events (run_id, seq, kind, actor, data, at, prev_hash, hash) \
    SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[])";

/// Binds [`INSERT_EVENTS`]' parameters, starting at `$1`.
pub(super) fn bind_events<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    run_id: &'q str,
    chained: &'q Chained,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(run_id)
        .bind(&chained.seqs)
        .bind(&chained.kinds)
        .bind(&chained.actors)
        .bind(&chained.data)
        .bind(&chained.ats)
        .bind(&chained.prevs)
        .bind(&chained.hashes)
}

/// Queues the webhook deliveries of those `events` that webhooks can subscribe to.
pub(super) async fn enqueue_webhooks(
    conn: &mut PgConnection,
    run_id: &str,
    events: &[AuditEvent],
) -> StoreResult<()> {
    for event in events.iter().filter(|e| crate::webhook::is_event(e.kind)) {
        let data = crate::webhook::envelope_data(run_id, event);
        sqlx::query(super::webhooks::ENQUEUE)
            .bind(crate::store::webhooks::event_id())
            .bind(event.kind)
            .bind(data.to_string())
            .bind(event.at_ms)
            .bind(Option::<String>::None)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Appends `events` to the run's chain (locking the run's row if this transaction has not yet)
/// and records the new head on the run.
pub(super) async fn append(
    conn: &mut PgConnection,
    run_id: &str,
    events: &[AuditEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let head = lock_run(conn, run_id).await?;
    let chained = chain(run_id, head, events);
    bind_events(sqlx::query(INSERT_EVENTS), run_id, &chained)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE runs SET audit_seq = $1, audit_head = $2 WHERE id = $3")
        .bind(chained.head.seq)
        .bind(&chained.head.hash)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    enqueue_webhooks(conn, run_id, events).await
}
