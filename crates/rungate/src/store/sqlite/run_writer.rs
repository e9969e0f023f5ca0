//! The write path of runs: one SQLite connection commits every run change — new runs, steps
//! with their ledger entries, closes, gate decisions — together with their audit events.
//!
//! Why rusqlite and one connection rather than the async pool: every proxied call ends in a
//! step write, and sqlx's SQLite driver turns each statement into a round trip to its
//! connection thread (~80 µs each here). Committing a step took ~600 µs and capped the gateway
//! near 2k calls/s. Here a change is one call into SQLite with cached prepared statements, in
//! one of two places:
//!
//! - **inline**, on the caller's task, when no other change is in flight and the writer thread
//!   has not batched several for [`QUIET_MS`]: the common case at low load, with no thread to
//!   wake and none to wake the caller back (each hop costs tens of µs, and milliseconds in the
//!   tail when the cores are busy: added p99 at concurrency 1 went from ~890 to ~770 µs in the
//!   bench). "No other in flight" is checked again after yielding once to the tasks that are
//!   ready: on a runtime that has more ready calls than workers (one worker, in the extreme)
//!   changes would otherwise never overlap, each would commit alone, and the gateway pinned to
//!   one core lost ~30 % of its throughput to that (`rungate-bench --pin`);
//! - **on the writer thread** otherwise: it takes everything queued (group commit), runs it in
//!   one transaction and answers each caller. Batching never waits for company, and under load
//!   it is what keeps the cost per change down (about 7 changes per commit at concurrency 64,
//!   where committing each alone cost ~17 % of the gateway's throughput).
//!
//! Either way one connection means writers never collide inside SQLite, whose busy handler
//! would sleep.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, AuditEvent, GENESIS};
use crate::money::UsdNanos;
use crate::run::{Run, RunId, RunStatus, RunTotals};
use crate::store::{StepRecord, StoreError, StoreResult};

use super::checkpoint::{self, WAL_SIZE_LIMIT};
use super::gate_writes::{self, GateChange, GateOutcome};
use super::to_i64;
use crate::store::runs::{kind_str, status_str};

/// How long after the writer thread last batched several changes the next ones keep going to
/// it: under load, a change that happens to be alone would otherwise commit by itself and cost
/// ~3 × a batched one.
const QUIET_MS: u64 = 2;

/// Changes per transaction at most.
const MAX_BATCH: usize = 256;

enum Change {
    CreateRun(Box<(Run, AuditEvent)>, oneshot::Sender<StoreResult<()>>),
    RecordStep(Box<StepRecord>, oneshot::Sender<StoreResult<RunTotals>>),
    CloseRun(Box<CloseRun>, oneshot::Sender<StoreResult<bool>>),
    AppendEvents(RunId, Vec<AuditEvent>, oneshot::Sender<StoreResult<()>>),
    Gate(Box<GateChange>, oneshot::Sender<StoreResult<GateOutcome>>),
}

struct CloseRun {
    id: RunId,
    status: RunStatus,
    reason: String,
    metadata: Option<String>,
    event: AuditEvent,
}

/// What the writer thread is asked to do.
enum Job {
    Change(Change),
    /// Finish the background checkpoint so that the WAL restarts (see `checkpoint`).
    FinishCheckpoint,
}

#[derive(Clone, Debug)]
pub(super) struct RunWriter {
    conn: Arc<Mutex<Connection>>,
    queue: mpsc::Sender<Job>,
    traffic: Arc<Traffic>,
}

/// What decides between inline and the writer thread.
#[derive(Debug)]
struct Traffic {
    /// Changes submitted and not yet answered.
    in_flight: AtomicUsize,
    /// When the writer thread last took more than one change at once, in ms since `start`
    /// (monotonic: a clock set back must not keep changes off the inline path).
    batched_at_ms: AtomicU64,
    start: Instant,
    /// Finishes the checkpoint when the background task falls behind.
    backstop: checkpoint::Backstop,
}

impl Traffic {
    fn new(backstop: checkpoint::Backstop) -> Traffic {
        Traffic {
            backstop,
            in_flight: AtomicUsize::new(0),
            batched_at_ms: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn batched(&self) {
        self.batched_at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// No batch of several on the writer thread for [`QUIET_MS`].
    fn quiet(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.batched_at_ms.load(Ordering::Relaxed))
            > QUIET_MS
    }
}

/// Counts one change in flight until dropped (answered, or its caller gave up).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts a change in; true when it may commit inline: no other in flight, and no batch
    /// of several on the writer thread for [`QUIET_MS`].
    fn enter(traffic: &'a Traffic) -> (InFlight<'a>, bool) {
        let alone = traffic.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        (InFlight(&traffic.in_flight), alone && traffic.quiet())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The thread's handle for the background checkpoint: it does not keep the writer alive.
pub(super) struct WriterCue(mpsc::WeakSender<Job>);

impl WriterCue {
    /// Asks the writer thread to finish the checkpoint; false once the writer is gone. A full
    /// queue skips this round (the writer is busy, the next round asks again).
    pub(super) fn finish_checkpoint(&self) -> bool {
        match self.0.upgrade() {
            Some(queue) => {
                let _ = queue.try_send(Job::FinishCheckpoint);
                true
            }
            None => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        match &err {
            rusqlite::Error::SqliteFailure(e, _)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                StoreError::Conflict(err.to_string())
            }
            // The run a step, ledger entry or gate refers to does not exist.
            rusqlite::Error::SqliteFailure(e, _)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
            {
                StoreError::NotFound
            }
            _ => StoreError::Engine(err.to_string()),
        }
    }
}

impl RunWriter {
    /// Opens the writer connection on an existing, migrated database and starts its thread,
    /// which ends when the last `RunWriter` is dropped.
    pub(super) fn start(path: &Path) -> StoreResult<RunWriter> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"))?;
        conn.set_prepared_statement_cache_capacity(64);
        let conn = Arc::new(Mutex::new(conn));
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let traffic = Arc::new(Traffic::new(checkpoint::Backstop::new(path)));
        let (shared, seen) = (Arc::clone(&conn), Arc::clone(&traffic));
        std::thread::Builder::new()
            .name("rungate-run-writer".into())
            .spawn(move || write_loop(&shared, &seen, jobs))
            .map_err(|e| StoreError::Engine(format!("cannot start the writer thread: {e}")))?;
        Ok(RunWriter {
            conn,
            queue,
            traffic,
        })
    }

    pub(super) fn cue(&self) -> WriterCue {
        WriterCue(self.queue.downgrade())
    }

    async fn submit<T>(
        &self,
        change: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Change,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Engine("the run writer has stopped".into());
        let (_counted, mut inline) = InFlight::enter(&self.traffic);
        if inline {
            // Let the tasks that are ready run first: under load some of them submit changes
            // meanwhile (to the writer thread, since this one is in flight), and this one then
            // joins them there to commit in the same transaction. Alone, it commits inline.
            tokio::task::yield_now().await;
            inline = self.traffic.in_flight.load(Ordering::Acquire) == 1;
        }
        let change = change(reply);
        let queued = if inline {
            self.commit_inline(change).err()
        } else {
            Some(change)
        };
        if let Some(change) = queued {
            self.queue
                .send(Job::Change(change))
                .await
                .map_err(|_| stopped())?;
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Commits `change` on the caller's thread when the connection is free and nothing waits
    /// for the writer thread (a job queued there must not be overtaken); hands it back
    /// otherwise.
    fn commit_inline(&self, change: Change) -> Result<(), Change> {
        if self.queue.capacity() != self.queue.max_capacity() {
            return Err(change);
        }
        let mut conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(change),
        };
        commit_one(&mut conn, change);
        self.traffic.backstop.after_commit(&conn);
        Ok(())
    }

    pub(super) async fn create_run(&self, run: &Run, event: AuditEvent) -> StoreResult<()> {
        self.submit(|reply| Change::CreateRun(Box::new((run.clone(), event)), reply))
            .await
    }

    pub(super) async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals> {
        self.submit(|reply| Change::RecordStep(Box::new(record.clone()), reply))
            .await
    }

    pub(super) async fn append_events(
        &self,
        id: &RunId,
        events: Vec<AuditEvent>,
    ) -> StoreResult<()> {
        self.submit(|reply| Change::AppendEvents(id.clone(), events, reply))
            .await
    }

    pub(super) async fn change_gates(&self, change: GateChange) -> StoreResult<GateOutcome> {
        self.submit(|reply| Change::Gate(Box::new(change), reply))
            .await
    }

    /// True when this call closed the run; false when it was not running.
    pub(super) async fn close_run(
        &self,
        id: &RunId,
        status: RunStatus,
        reason: &str,
        metadata: Option<&serde_json::Value>,
        event: AuditEvent,
    ) -> StoreResult<bool> {
        let close = CloseRun {
            id: id.clone(),
            status,
            reason: reason.to_owned(),
            metadata: metadata.map(|m| m.to_string()),
            event,
        };
        self.submit(|reply| Change::CloseRun(Box::new(close), reply))
            .await
    }
}

/// A panic inside SQLite work unwinds through rusqlite's `Transaction`, which rolls back: the
/// connection is usable again.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_loop(conn: &Mutex<Connection>, traffic: &Traffic, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        // Woken by the first change, this thread would take the CPU from the callers that are
        // about to submit theirs and commit nearly alone (~2 changes a batch with the gateway
        // pinned to one core). Yielding lets them run first (~16 a batch, +35 % throughput
        // there); on a core with nothing else to run it returns at once.
        std::thread::yield_now();
        let mut finish_checkpoint = false;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Change(change) => batch.push(change),
                Job::FinishCheckpoint => finish_checkpoint = true,
            }
            next = (batch.len() < MAX_BATCH)
                .then(|| jobs.try_recv().ok())
                .flatten();
        }
        let mut conn = lock(conn);
        // Only company is a sign of load: a change that came here alone (the connection was
        // busy with a checkpoint, say) must not keep the next ones from committing inline.
        if batch.len() > 1 {
            traffic.batched();
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &mut batch);
            traffic.backstop.after_commit(&conn);
        }
        // After the answers went out: what queued meanwhile waits for this, not the callers
        // just answered.
        if finish_checkpoint {
            checkpoint::finish(&conn);
        }
    }
}

/// Applies the whole batch in one transaction and answers every caller. If any change fails,
/// the batch is rolled back and each change is retried in a transaction of its own, so one bad
/// change (a step for a run that does not exist) cannot fail its neighbours. Savepoints would
/// give the same isolation, but cost a sub-journal page copy on every change of every batch.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Change>) {
    if batch.len() == 1 {
        if let Some(change) = batch.pop() {
            commit_one(conn, change);
        }
        return;
    }
    match apply_all(conn, batch) {
        Ok(outcomes) => {
            for (change, outcome) in batch.drain(..).zip(outcomes) {
                answer(change, outcome);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, changes = batch.len(), "batch failed; retrying its changes one by one");
            for change in batch.drain(..) {
                commit_one(conn, change);
            }
        }
    }
}

/// One change in a transaction of its own, answered.
fn commit_one(conn: &mut Connection, change: Change) {
    let outcome = apply_all(conn, std::slice::from_ref(&change))
        .map(|mut outcomes| outcomes.remove(0))
        .unwrap_or_else(Outcome::Failed);
    answer(change, outcome);
}

enum Outcome {
    Created,
    Recorded(RunTotals),
    Closed(bool),
    Gate(GateOutcome),
    Failed(StoreError),
}

/// All of `changes` in one transaction: every one applied, or none.
fn apply_all(conn: &mut Connection, changes: &[Change]) -> StoreResult<Vec<Outcome>> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        outcomes.push(match change {
            Change::CreateRun(created, _) => {
                create_run(&tx, &created.0, &created.1).map(|()| Outcome::Created)?
            }
            Change::RecordStep(record, _) => record_step(&tx, record).map(Outcome::Recorded)?,
            Change::CloseRun(close, _) => close_run(&tx, close).map(Outcome::Closed)?,
            Change::AppendEvents(id, events, _) => {
                append_audit(&tx, &id.0, events).map(|()| Outcome::Created)?
            }
            Change::Gate(change, _) => gate_writes::apply(&tx, change).map(Outcome::Gate)?,
        });
    }
    tx.commit()?;
    Ok(outcomes)
}

fn answer(change: Change, outcome: Outcome) {
    let mismatch = || StoreError::Engine("writer outcome does not match its change".into());
    match (change, outcome) {
        (Change::CreateRun(_, reply), Outcome::Created) => drop(reply.send(Ok(()))),
        (Change::RecordStep(_, reply), Outcome::Recorded(totals)) => drop(reply.send(Ok(totals))),
        (Change::CloseRun(_, reply), Outcome::Closed(changed)) => drop(reply.send(Ok(changed))),
        (Change::CreateRun(_, reply), Outcome::Failed(e)) => drop(reply.send(Err(e))),
        (Change::RecordStep(_, reply), Outcome::Failed(e)) => drop(reply.send(Err(e))),
        (Change::CloseRun(_, reply), Outcome::Failed(e)) => drop(reply.send(Err(e))),
        (Change::AppendEvents(_, _, reply), Outcome::Created) => drop(reply.send(Ok(()))),
        (Change::AppendEvents(_, _, reply), Outcome::Failed(e)) => drop(reply.send(Err(e))),
        (Change::AppendEvents(_, _, reply), _) => drop(reply.send(Err(mismatch()))),
        (Change::Gate(_, reply), Outcome::Gate(outcome)) => drop(reply.send(Ok(outcome))),
        (Change::Gate(_, reply), Outcome::Failed(e)) => drop(reply.send(Err(e))),
        (Change::Gate(_, reply), _) => drop(reply.send(Err(mismatch()))),
        (Change::CreateRun(_, reply), _) => drop(reply.send(Err(mismatch()))),
        (Change::RecordStep(_, reply), _) => drop(reply.send(Err(mismatch()))),
        (Change::CloseRun(_, reply), _) => drop(reply.send(Err(mismatch()))),
    }
}

fn create_run(tx: &Connection, r: &Run, event: &AuditEvent) -> StoreResult<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO runs (id, agent_id, team, policy_id, policy_version, status, auto, spend_nanos, input_tokens, output_tokens, steps_count, started_at, last_activity_at, idle_timeout_ms, ended_at, ended_reason, metadata, budget_limit_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    insert.execute(params![
        r.id.0,
        r.agent_id,
        r.team,
        r.policy_id,
        r.policy_version,
        r.status.as_str(),
        r.auto,
        r.spend.0,
        to_i64(r.input_tokens),
        to_i64(r.output_tokens),
        to_i64(r.steps_count),
        r.started_at_ms,
        r.last_activity_ms,
        r.idle_timeout_ms,
        r.ended_at_ms,
        r.ended_reason,
        r.metadata.to_string(),
        r.budget_limit.map(|l| l.0),
    ])?;
    append_audit(tx, &r.id.0, std::slice::from_ref(event))
}

fn record_step(tx: &Connection, record: &StepRecord) -> StoreResult<RunTotals> {
    let s = &record.step;
    tx.prepare_cached(
        "INSERT INTO steps (id, run_id, agent_id, kind, provider, model, input_tokens, output_tokens, cost_nanos, latency_ms, status, http_status, error_message, request, response, created_at, price_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        s.id.0, s.run_id.0, s.agent_id, kind_str(s.kind), s.provider, s.model, to_i64(s.input_tokens),
        to_i64(s.output_tokens), s.cost.0, to_i64(s.latency_ms), status_str(s.status), s.http_status,
        s.error_message, s.request.as_ref().map(|v| v.to_string()), s.response.as_ref().map(|v| v.to_string()),
        s.created_at_ms, s.price_version,
    ])?;
    let mut charged = UsdNanos::ZERO;
    let mut ledger = tx.prepare_cached(
        "INSERT INTO ledger (run_id, step_id, kind, amount_nanos, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, step_id, kind) DO NOTHING",
    )?;
    for entry in &record.ledger {
        let inserted = ledger.execute(params![
            s.run_id.0,
            entry.step_id,
            entry.kind.as_str(),
            entry.amount.0,
            entry.created_at_ms
        ])? > 0;
        if inserted && entry.kind.is_spend() {
            charged = charged.saturating_add(entry.amount);
        }
    }
    let (audit_seq, audit_head) = chain_events(tx, &s.run_id.0, &record.audit)?;
    let totals = tx
        .prepare_cached(
            "UPDATE runs SET spend_nanos = spend_nanos + ?1, input_tokens = input_tokens + ?2, output_tokens = output_tokens + ?3, steps_count = steps_count + 1, last_activity_at = MAX(last_activity_at, ?4), audit_seq = ?6, audit_head = ?7 WHERE id = ?5 RETURNING spend_nanos, input_tokens, output_tokens, steps_count, last_activity_at",
        )?
        .query_row(params![charged.0, to_i64(s.input_tokens), to_i64(s.output_tokens), s.created_at_ms, s.run_id.0, audit_seq, audit_head], |row| {
            Ok(RunTotals {
                spend: UsdNanos(row.get(0)?),
                input_tokens: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                output_tokens: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                steps_count: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                last_activity_ms: row.get(4)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound)?;
    if let Some(event) = record
        .alert
        .as_ref()
        .and_then(|alert| alert.crossed(UsdNanos(totals.spend.0 - charged.0), totals.spend))
    {
        append_audit(tx, &s.run_id.0, std::slice::from_ref(&event))?;
    }
    Ok(totals)
}

fn close_run(tx: &Connection, c: &CloseRun) -> StoreResult<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE runs SET status = ?1, ended_reason = ?2, ended_at = ?3, metadata = COALESCE(?4, metadata) WHERE id = ?5 AND status = 'running'",
        )?
        .execute(params![c.status.as_str(), c.reason, c.event.at_ms, c.metadata, c.id.0])?;
    if changed == 0 {
        let exists = tx
            .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?
            .exists(params![c.id.0])?;
        return if exists {
            Ok(false)
        } else {
            Err(StoreError::NotFound)
        };
    }
    append_audit(tx, &c.id.0, std::slice::from_ref(&c.event))?;
    Ok(true)
}

/// Queues a run event for the webhooks subscribed to it, in the transaction that records it.
fn enqueue_webhooks(tx: &Connection, run_id: &str, event: &AuditEvent) -> StoreResult<()> {
    let data = crate::webhook::envelope_data(run_id, event);
    tx.prepare_cached(super::webhooks::ENQUEUE)?
        .execute(params![
            crate::store::webhooks::event_id(),
            event.kind,
            data.to_string(),
            event.at_ms,
            Option::<String>::None,
        ])?;
    Ok(())
}

/// Appends events to the run's hash chain (each hash covers the previous one) and records the
/// new head on the run.
pub(super) fn append_audit(
    tx: &Connection,
    run_id: &str,
    events: &[AuditEvent],
) -> StoreResult<()> {
    let (seq, head) = chain_events(tx, run_id, events)?;
    tx.prepare_cached("UPDATE runs SET audit_seq = ?1, audit_head = ?2 WHERE id = ?3")?
        .execute(params![seq, head, run_id])?;
    Ok(())
}

/// Inserts `events` into the run's chain; returns the new head (`seq`, hash) for the caller to
/// record on the run — `record_step` folds it into the UPDATE it makes anyway.
fn chain_events(
    tx: &Connection,
    run_id: &str,
    events: &[AuditEvent],
) -> StoreResult<(i64, String)> {
    // The head lives on the run's row (updated below, in this transaction): one page the step
    // touches anyway, and the anchor that makes a dropped last event detectable.
    let (mut seq, head): (i64, Option<String>) = tx
        .prepare_cached("SELECT audit_seq, audit_head FROM runs WHERE id = ?1")?
        .query_row(params![run_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    let mut prev = head.unwrap_or_else(|| GENESIS.to_owned());
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit_events (run_id, seq, kind, actor, data, at, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for event in events {
        seq += 1;
        if crate::webhook::is_event(event.kind) {
            enqueue_webhooks(tx, run_id, event)?;
        }
        let data = event.data.to_string();
        let body =
            audit::canonical_with_data(run_id, seq, event.kind, &event.actor, &data, event.at_ms);
        let hash = audit::chain(&prev, &body);
        insert.execute(params![
            run_id,
            seq,
            event.kind,
            event.actor,
            data,
            event.at_ms,
            prev,
            hash
        ])?;
        prev = hash;
    }
    Ok((seq, prev))
}
