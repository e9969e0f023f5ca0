//! The hot path's writes on PostgreSQL — admissions (holds) and settled steps — committed in
//! groups. Every one of them must lock its run's row, so the calls of one busy run queue on
//! that lock; one transaction a call made the lock's hand-over (and its round trips) the
//! throughput of the run: ~800 steps/s here. Instead a task takes everything queued, locks each
//! run once (in id order, so two gateways' groups cannot deadlock), judges the admissions in
//! order against the books it read — exactly as if they had come one by one — and writes all of
//! it in one statement: begin, lock, [rate windows], write, commit, whatever the group's size.
//! Alone, a call is committed at once: grouping never waits for company. A group that fails is
//! retried call by call, so one bad call cannot fail its neighbours.

use std::collections::{BTreeMap, HashMap};

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::audit;
use crate::audit::AuditEvent;
use crate::budget::{self, Snapshot};
use crate::money::UsdNanos;
use crate::policy::{self, RATE_WINDOW_MS};
use crate::run::{JoinRefusal, RunStatus, RunTotals};
use crate::store::runs::{kind_str, status_str};
use crate::store::sql::{to_i64, to_u64};
use crate::store::{Reservation, Reserved, StepRecord, StoreError, StoreResult};

/// Calls per group at most.
const MAX_GROUP: usize = 128;
/// Rate windows are counted in buckets of this many milliseconds.
pub(super) const BUCKET_MS: i64 = 100;

pub(super) enum Job {
    Reserve(Box<Reservation>, oneshot::Sender<StoreResult<Reserved>>),
    Step(Box<StepRecord>, oneshot::Sender<StoreResult<RunTotals>>),
}

impl Job {
    fn run_id(&self) -> &str {
        match self {
            Job::Reserve(r, _) => &r.run_id.0,
            Job::Step(s, _) => &s.step.run_id.0,
        }
    }

    fn fail(self, err: StoreError) {
        match self {
            Job::Reserve(_, reply) => drop(reply.send(Err(err))),
            Job::Step(_, reply) => drop(reply.send(Err(err))),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(pool: PgPool) -> Writer {
        let (queue, jobs) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(write_loop(pool, jobs));
        Writer { queue }
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Job,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Engine("the PostgreSQL writer has stopped".into());
        self.queue.send(job(reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn reserve(&self, reservation: Reservation) -> StoreResult<Reserved> {
        self.submit(|reply| Job::Reserve(Box::new(reservation), reply))
            .await
    }

    pub(super) async fn record_step(&self, record: &StepRecord) -> StoreResult<RunTotals> {
        self.submit(|reply| Job::Step(Box::new(record.clone()), reply))
            .await
    }
}

async fn write_loop(pool: PgPool, mut jobs: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = jobs.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&pool, &mut group).await;
    }
}

/// Commits the whole group or, when it fails, each call alone.
async fn commit_group(pool: &PgPool, group: &mut Vec<Job>) {
    match write(pool, group).await {
        Ok(written) => written.send(group.drain(..)),
        Err(err) if group.len() == 1 => {
            if let Some(job) = group.pop() {
                job.fail(err);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, calls = group.len(), "group failed; retrying its calls one by one");
            for job in group.drain(..) {
                let alone = [job];
                match write(pool, &alone).await {
                    Ok(written) => written.send(alone.into_iter()),
                    Err(err) => {
                        let [job] = alone;
                        job.fail(err);
                    }
                }
            }
        }
    }
}

enum Answer {
    Reserved(Reserved),
    /// The step is written; the caller gets its run's totals as the group committed them.
    Recorded(String),
    Failed(StoreError),
}

/// A committed group's answers, one per call in order, and the totals of the runs it changed.
struct Written {
    answers: Vec<Answer>,
    totals: HashMap<String, RunTotals>,
}

impl Written {
    fn send(self, jobs: impl Iterator<Item = Job>) {
        for (job, answer) in jobs.zip(self.answers) {
            match (job, answer) {
                (Job::Reserve(_, reply), Answer::Reserved(reserved)) => {
                    drop(reply.send(Ok(reserved)))
                }
                (Job::Step(_, reply), Answer::Recorded(run)) => {
                    drop(reply.send(
                        self.totals.get(&run).cloned().ok_or_else(|| {
                            StoreError::Engine("no totals for a recorded step".into())
                        }),
                    ))
                }
                (job, Answer::Failed(err)) => job.fail(err),
                (job, _) => job.fail(StoreError::Engine(
                    "writer answer does not match its call".into(),
                )),
            }
        }
    }
}

/// A locked run as the group sees it, changed in memory as the group's calls are judged.
struct Books {
    open: Option<JoinRefusal>,
    snapshot: Snapshot,
    budget_limit: Option<UsdNanos>,
    audit: audit::Head,
}

/// Everything the group writes, as the arrays of one statement.
#[derive(Default)]
struct Writes {
    // audit_events
    ev_run: Vec<String>,
    ev_seq: Vec<i64>,
    ev_kind: Vec<String>,
    ev_actor: Vec<String>,
    ev_data: Vec<String>,
    ev_at: Vec<i64>,
    ev_prev: Vec<String>,
    ev_hash: Vec<String>,
    webhook_events: Vec<(String, AuditEvent)>,
    // steps
    st_id: Vec<String>,
    st_run: Vec<String>,
    st_agent: Vec<String>,
    st_kind: Vec<&'static str>,
    st_provider: Vec<String>,
    st_model: Vec<String>,
    st_input: Vec<i64>,
    st_output: Vec<i64>,
    st_cost: Vec<i64>,
    st_latency: Vec<i64>,
    st_status: Vec<&'static str>,
    st_http: Vec<Option<i64>>,
    st_error: Vec<Option<String>>,
    st_request: Vec<Option<String>>,
    st_response: Vec<Option<String>>,
    st_at: Vec<i64>,
    st_price_version: Vec<Option<String>>,
    // ledger
    le_run: Vec<String>,
    le_step: Vec<String>,
    le_kind: Vec<&'static str>,
    le_amount: Vec<i64>,
    le_at: Vec<i64>,
    // holds settled
    gone_run: Vec<String>,
    gone_hold: Vec<String>,
    // holds granted
    ho_run: Vec<String>,
    ho_id: Vec<String>,
    ho_gateway: Vec<String>,
    ho_amount: Vec<i64>,
    ho_tokens: Vec<i64>,
    ho_at: Vec<i64>,
    ho_expires: Vec<i64>,
    // rate buckets, summed per (window, bucket)
    buckets: BTreeMap<(String, i64), (i64, i64, i64)>,
    // what steps cost, summed per (agent, minute)
    agent_minutes: BTreeMap<(String, i64), i64>,
}

/// Per run: what the steps add and what the new holds reserve.
#[derive(Default)]
struct RunDelta {
    input: i64,
    output: i64,
    steps: i64,
    last_activity: i64,
    reserved: i64,
    reserved_tokens: i64,
    in_flight: i64,
    touched_audit: bool,
}

/// The group in one transaction; an answer per call, in order.
async fn write(pool: &PgPool, group: &[Job]) -> StoreResult<Written> {
    let mut tx = pool.begin().await?;
    let mut books = lock_runs(&mut tx, group).await?;
    let mut windows = read_windows(&mut tx, group).await?;
    let mut hours = read_hours(&mut tx, group).await?;
    let mut writes = Writes::default();
    let mut deltas: BTreeMap<String, RunDelta> = BTreeMap::new();
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        let answer = match books.get_mut(job.run_id()) {
            None => Answer::Failed(StoreError::NotFound),
            Some(run) => match job {
                Job::Reserve(r, _) => Answer::Reserved(admit(
                    r,
                    run,
                    &mut windows,
                    &hours,
                    &mut writes,
                    &mut deltas,
                )),
                Job::Step(s, _) => {
                    settle(s, run, &mut writes, &mut deltas);
                    if let Some(spent) = hours.get_mut(&s.step.agent_id) {
                        *spent = spent.saturating_add(s.step.cost);
                    }
                    Answer::Recorded(s.step.run_id.0.clone())
                }
            },
        };
        answers.push(answer);
    }
    let totals = apply(&mut tx, &writes, &deltas, &books).await?;
    for (run_id, event) in &writes.webhook_events {
        audit::enqueue_webhooks(&mut tx, run_id, std::slice::from_ref(event)).await?;
    }
    tx.commit().await?;
    Ok(Written { answers, totals })
}

/// Locks every run of the group, in id order, and reads its books and chain head.
async fn lock_runs(
    tx: &mut Transaction<'_, Postgres>,
    group: &[Job],
) -> StoreResult<HashMap<String, Books>> {
    let mut ids: Vec<&str> = group.iter().map(Job::run_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(
        "SELECT id, status, ended_reason, spend_nanos, input_tokens + output_tokens AS tokens, steps_count, budget_limit_nanos, \
                reserved_nanos, reserved_tokens, in_flight, audit_seq, audit_head \
         FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut books = HashMap::with_capacity(rows.len());
    for row in &rows {
        let status: String = row.try_get("status")?;
        let status = RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?;
        let reason: Option<String> = row.try_get("ended_reason")?;
        books.insert(
            row.try_get::<String, _>("id")?,
            Books {
                open: (status != RunStatus::Running).then(|| JoinRefusal::Closed {
                    status,
                    force_stopped: reason.as_deref() == Some(crate::run::FORCE_STOPPED),
                }),
                snapshot: Snapshot {
                    spend: UsdNanos(row.try_get("spend_nanos")?),
                    tokens: to_u64(row.try_get("tokens")?),
                    steps: to_u64(row.try_get("steps_count")?),
                    reserved: UsdNanos(row.try_get("reserved_nanos")?),
                    reserved_tokens: to_u64(row.try_get("reserved_tokens")?),
                    in_flight: to_u64(row.try_get("in_flight")?),
                },
                budget_limit: row
                    .try_get::<Option<i64>, _>("budget_limit_nanos")?
                    .map(UsdNanos),
                audit: audit::Head {
                    seq: row.try_get("audit_seq")?,
                    hash: row
                        .try_get::<Option<String>, _>("audit_head")?
                        .unwrap_or_else(|| crate::audit::GENESIS.to_owned()),
                },
            },
        );
    }
    Ok(books)
}

/// A rate window as read at the start of the group: calls, tokens, earliest call.
type Window = (u64, u64, i64);

/// Reads the rate windows the group's admissions check, after locking the agent-wide ones
/// (run windows are covered by the run's row lock). A bucket counts while any of it is inside
/// the minute, so a window may refuse up to 100 ms early, never admit past its limit.
async fn read_windows(
    tx: &mut Transaction<'_, Postgres>,
    group: &[Job],
) -> StoreResult<HashMap<String, Window>> {
    let mut keys: Vec<&str> = Vec::new();
    let mut agent_keys: Vec<&str> = Vec::new();
    let mut now_ms = i64::MAX;
    for job in group {
        if let Job::Reserve(r, _) = job {
            for check in &r.rates {
                keys.push(&check.key);
                if check.scope != "run" {
                    agent_keys.push(&check.key);
                }
            }
            if !r.rates.is_empty() {
                now_ms = now_ms.min(r.now_ms);
            }
        }
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    keys.sort_unstable();
    keys.dedup();
    agent_keys.sort_unstable();
    agent_keys.dedup();
    if !agent_keys.is_empty() {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT k FROM UNNEST($1::text[]) AS k ORDER BY k) AS sorted",
        )
        .bind(&agent_keys)
        .execute(&mut **tx)
        .await?;
    }
    let rows = sqlx::query(
        "SELECT window_key, CAST(SUM(calls) AS BIGINT), CAST(SUM(tokens) AS BIGINT), MIN(first_at) FROM rate_buckets \
         WHERE window_key = ANY($1) AND bucket >= $2 GROUP BY window_key",
    )
    .bind(&keys)
    .bind(oldest_bucket(now_ms))
    .fetch_all(&mut **tx)
    .await?;
    let mut windows = HashMap::with_capacity(rows.len());
    for row in &rows {
        windows.insert(
            row.try_get::<String, _>(0)?,
            (
                to_u64(row.try_get(1)?),
                to_u64(row.try_get(2)?),
                row.try_get(3)?,
            ),
        );
    }
    Ok(windows)
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// What the agents whose hourly cap the group's admissions check spent in the last hour,
/// counting the oldest minute whole (a cap may refuse up to a minute early, never late).
async fn read_hours(
    tx: &mut Transaction<'_, Postgres>,
    group: &[Job],
) -> StoreResult<HashMap<String, UsdNanos>> {
    let mut agents: Vec<&str> = Vec::new();
    let mut now_ms = i64::MAX;
    for job in group {
        if let Job::Reserve(r, _) = job {
            if let Some(hourly) = &r.hourly {
                agents.push(&hourly.agent_id);
                now_ms = now_ms.min(r.now_ms);
            }
        }
    }
    if agents.is_empty() {
        return Ok(HashMap::new());
    }
    agents.sort_unstable();
    agents.dedup();
    let rows = sqlx::query(
        "SELECT agent_id, CAST(SUM(cost_nanos) AS BIGINT) FROM agent_spend_minutes \
         WHERE agent_id = ANY($1) AND minute >= $2 GROUP BY agent_id",
    )
    .bind(&agents)
    .bind(oldest_minute(now_ms))
    .fetch_all(&mut **tx)
    .await?;
    let mut hours: HashMap<String, UsdNanos> = agents
        .iter()
        .map(|a| ((*a).to_owned(), UsdNanos::ZERO))
        .collect();
    for row in &rows {
        hours.insert(row.try_get(0)?, UsdNanos(row.try_get(1)?));
    }
    Ok(hours)
}

/// The oldest minute still (partly) inside the hour at `now_ms`.
pub(super) fn oldest_minute(now_ms: i64) -> i64 {
    (now_ms - HOUR_MS).div_euclid(MINUTE_MS)
}

/// The oldest bucket still (partly) inside the window at `now_ms`.
pub(super) fn oldest_bucket(now_ms: i64) -> i64 {
    (now_ms - RATE_WINDOW_MS).div_euclid(BUCKET_MS)
}

/// Judges one admission against the run's books and rate windows as the group left them.
fn admit(
    r: &Reservation,
    run: &mut Books,
    windows: &mut HashMap<String, Window>,
    hours: &HashMap<String, UsdNanos>,
    writes: &mut Writes,
    deltas: &mut BTreeMap<String, RunDelta>,
) -> Reserved {
    if let Some(refused) = &run.open {
        return Reserved::Closed(refused.clone());
    }
    if let Some(hourly) = &r.hourly {
        let spent = hours.get(&hourly.agent_id).copied().unwrap_or_default();
        if spent.saturating_add(hourly.estimate) > hourly.limit {
            return Reserved::HourlyExceeded { spent };
        }
    }
    for check in &r.rates {
        let (calls, used, oldest) = windows.get(&check.key).copied().unwrap_or((0, 0, r.now_ms));
        if let Err(refusal) =
            policy::judge_rate(&check.limits, calls, used, oldest, r.now_ms, check.tokens)
        {
            return Reserved::RateLimited {
                scope: check.scope,
                refusal,
            };
        }
    }
    let mut caps = r.caps;
    if let Some(raised) = run.budget_limit {
        caps.usd = Some(raised);
    }
    let admission = match budget::judge(&run.snapshot, &caps, &r.call) {
        Ok(admission) => admission,
        Err(refusal) => return Reserved::Refused(refusal),
    };
    run.snapshot.reserved = run.snapshot.reserved.saturating_add(admission.amount);
    run.snapshot.reserved_tokens += admission.tokens;
    run.snapshot.in_flight += 1;
    for check in &r.rates {
        let window = windows.entry(check.key.clone()).or_insert((0, 0, r.now_ms));
        window.0 += 1;
        window.1 += check.tokens;
        window.2 = window.2.min(r.now_ms);
        let bucket = writes
            .buckets
            .entry((check.key.clone(), r.now_ms.div_euclid(BUCKET_MS)))
            .or_insert((0, 0, r.now_ms));
        bucket.0 += 1;
        bucket.1 += to_i64(check.tokens);
        bucket.2 = bucket.2.min(r.now_ms);
    }
    let delta = deltas.entry(r.run_id.0.clone()).or_default();
    delta.reserved += admission.amount.0;
    delta.reserved_tokens += to_i64(admission.tokens);
    delta.in_flight += 1;
    writes.ho_run.push(r.run_id.0.clone());
    writes.ho_id.push(r.hold_id.clone());
    writes.ho_gateway.push(r.gateway_id.clone());
    writes.ho_amount.push(admission.amount.0);
    writes.ho_tokens.push(to_i64(admission.tokens));
    writes.ho_at.push(r.now_ms);
    writes.ho_expires.push(r.expires_at_ms);
    Reserved::Admitted(admission)
}

/// Adds one settled step (its row, ledger entries, events and the hold it removes).
fn settle(
    record: &StepRecord,
    run: &mut Books,
    writes: &mut Writes,
    deltas: &mut BTreeMap<String, RunDelta>,
) {
    let s = &record.step;
    let run_id = &s.run_id.0;
    let head = std::mem::replace(
        &mut run.audit,
        audit::Head {
            seq: 0,
            hash: String::new(),
        },
    );
    // The spend this step charges, and whether that crosses the run's alert threshold.
    let charged = record
        .ledger
        .iter()
        .filter(|e| e.kind.is_spend())
        .fold(UsdNanos::ZERO, |sum, e| sum.saturating_add(e.amount));
    let before = run.snapshot.spend;
    run.snapshot.spend = before.saturating_add(charged);
    let mut events = record.audit.clone();
    events.extend(
        record
            .alert
            .as_ref()
            .and_then(|alert| alert.crossed(before, run.snapshot.spend)),
    );
    let chained = audit::chain(run_id, head, &events);
    for (i, event) in events.iter().enumerate() {
        writes.ev_run.push(run_id.clone());
        writes.ev_seq.push(chained.seqs[i]);
        writes.ev_kind.push(chained.kinds[i].clone());
        writes.ev_actor.push(chained.actors[i].clone());
        writes.ev_data.push(chained.data[i].clone());
        writes.ev_at.push(chained.ats[i]);
        writes.ev_prev.push(chained.prevs[i].clone());
        writes.ev_hash.push(chained.hashes[i].clone());
        if crate::webhook::is_event(event.kind) {
            writes.webhook_events.push((run_id.clone(), event.clone()));
        }
    }
    run.audit = chained.head;
    writes.st_id.push(s.id.0.clone());
    writes.st_run.push(run_id.clone());
    writes.st_agent.push(s.agent_id.clone());
    writes.st_kind.push(kind_str(s.kind));
    writes.st_provider.push(s.provider.clone());
    writes.st_model.push(s.model.clone());
    writes.st_input.push(to_i64(s.input_tokens));
    writes.st_output.push(to_i64(s.output_tokens));
    writes.st_cost.push(s.cost.0);
    writes.st_latency.push(to_i64(s.latency_ms));
    writes.st_status.push(status_str(s.status));
    writes.st_http.push(s.http_status.map(i64::from));
    writes.st_error.push(s.error_message.clone());
    writes
        .st_request
        .push(s.request.as_ref().map(|v| v.to_string()));
    writes
        .st_response
        .push(s.response.as_ref().map(|v| v.to_string()));
    writes.st_at.push(s.created_at_ms);
    writes.st_price_version.push(s.price_version.clone());
    if s.cost > UsdNanos::ZERO {
        *writes
            .agent_minutes
            .entry((s.agent_id.clone(), s.created_at_ms.div_euclid(MINUTE_MS)))
            .or_insert(0) += s.cost.0;
    }
    for entry in &record.ledger {
        writes.le_run.push(run_id.clone());
        writes.le_step.push(entry.step_id.clone());
        writes.le_kind.push(entry.kind.as_str());
        writes.le_amount.push(entry.amount.0);
        writes.le_at.push(entry.created_at_ms);
    }
    if let Some(hold) = &record.hold_id {
        writes.gone_run.push(run_id.clone());
        writes.gone_hold.push(hold.clone());
    }
    let delta = deltas.entry(run_id.clone()).or_default();
    delta.input += to_i64(s.input_tokens);
    delta.output += to_i64(s.output_tokens);
    delta.steps += 1;
    delta.last_activity = delta.last_activity.max(s.created_at_ms);
    delta.touched_audit = true;
}

/// The parts of the group's one statement, each present only when the group has rows for it
/// (an empty data-modifying CTE still costs its plan nodes and triggers). Parameters keep their
/// numbers in every variant; sqlx sends their types, so an unused one is no error.
const EVENTS: &str = "ev AS (INSERT INTO audit_events (run_id, seq, kind, actor, data, at, prev_hash, hash) \
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]))";
const STEPS: &str = "st AS (INSERT INTO steps (id, run_id, agent_id, kind, provider, model, input_tokens, output_tokens, cost_nanos, latency_ms, status, http_status, error_message, request, response, created_at, price_version) \
    SELECT * FROM UNNEST($9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[], $20::bigint[], $21::text[], $22::text[], $23::text[], $24::bigint[], $58::text[]))";
/// Ledger entries are keyed by step, so a replayed settlement adds nothing.
const LEDGER: &str = "led AS (INSERT INTO ledger (run_id, step_id, kind, amount_nanos, created_at) \
    SELECT * FROM UNNEST($25::text[], $26::text[], $27::text[], $28::bigint[], $29::bigint[]) \
    ON CONFLICT (run_id, step_id, kind) DO NOTHING RETURNING run_id, kind, amount_nanos), \
    charged AS (SELECT run_id, SUM(amount_nanos) AS amount FROM led WHERE kind = ANY($44::text[]) GROUP BY run_id)";
/// A hold the sweeper already released (its gateway went silent) is gone: nothing to subtract.
const SETTLED_HOLDS: &str = "gone AS (DELETE FROM run_holds h USING UNNEST($30::text[], $31::text[]) AS g(run_id, hold_id) \
    WHERE h.run_id = g.run_id AND h.hold_id = g.hold_id RETURNING h.run_id, h.amount_nanos, h.tokens), \
    released AS (SELECT run_id, SUM(amount_nanos) AS amount, SUM(tokens) AS tokens, COUNT(*) AS holds FROM gone GROUP BY run_id)";
const NEW_HOLDS: &str = "held AS (INSERT INTO run_holds (run_id, hold_id, gateway_id, amount_nanos, tokens, created_at, expires_at) \
    SELECT * FROM UNNEST($32::text[], $33::text[], $34::text[], $35::bigint[], $36::bigint[], $37::bigint[], $38::bigint[]))";
const BUCKETS: &str = "rated AS (INSERT INTO rate_buckets (window_key, bucket, calls, tokens, first_at) \
    SELECT * FROM UNNEST($39::text[], $40::bigint[], $41::bigint[], $42::bigint[], $43::bigint[]) \
    ON CONFLICT (window_key, bucket) DO UPDATE SET calls = rate_buckets.calls + EXCLUDED.calls, \
        tokens = rate_buckets.tokens + EXCLUDED.tokens, first_at = LEAST(rate_buckets.first_at, EXCLUDED.first_at))";
const AGENT_MINUTES: &str = "spent AS (INSERT INTO agent_spend_minutes (agent_id, minute, cost_nanos) \
    SELECT * FROM UNNEST($55::text[], $56::bigint[], $57::bigint[]) \
    ON CONFLICT (agent_id, minute) DO UPDATE SET cost_nanos = agent_spend_minutes.cost_nanos + EXCLUDED.cost_nanos)";
const DELTA: &str = "delta AS (SELECT * FROM UNNEST($45::text[], $46::bigint[], $47::bigint[], $48::bigint[], $49::bigint[], $50::bigint[], $51::bigint[], $52::bigint[], $53::bigint[], $54::text[]) \
    AS d(id, input, output, steps, last_activity, reserved, reserved_tokens, in_flight, audit_seq, audit_head))";

/// The statement for a group with these rows; it returns the totals of every run it changed.
fn apply_sql(w: &Writes) -> String {
    let mut parts = Vec::with_capacity(7);
    let present = [
        (!w.ev_run.is_empty(), EVENTS),
        (!w.st_id.is_empty(), STEPS),
        (!w.le_run.is_empty(), LEDGER),
        (!w.gone_run.is_empty(), SETTLED_HOLDS),
        (!w.ho_run.is_empty(), NEW_HOLDS),
        (!w.buckets.is_empty(), BUCKETS),
        (!w.agent_minutes.is_empty(), AGENT_MINUTES),
    ];
    for (here, part) in present {
        if here {
            parts.push(part);
        }
    }
    parts.push(DELTA);
    let charged = if w.le_run.is_empty() {
        "0"
    } else {
        "COALESCE((SELECT amount FROM charged c WHERE c.run_id = r.id), 0)"
    };
    let released = |column: &str| {
        if w.gone_run.is_empty() {
            "0".to_owned()
        } else {
            format!("COALESCE((SELECT {column} FROM released x WHERE x.run_id = r.id), 0)")
        }
    };
    format!(
        "WITH {} UPDATE runs r SET \
            spend_nanos = r.spend_nanos + {charged}, \
            input_tokens = r.input_tokens + d.input, output_tokens = r.output_tokens + d.output, \
            steps_count = r.steps_count + d.steps, last_activity_at = GREATEST(r.last_activity_at, d.last_activity), \
            audit_seq = COALESCE(d.audit_seq, r.audit_seq), audit_head = COALESCE(d.audit_head, r.audit_head), \
            reserved_nanos = r.reserved_nanos + d.reserved - {}, \
            reserved_tokens = r.reserved_tokens + d.reserved_tokens - {}, \
            in_flight = r.in_flight + d.in_flight - {} \
        FROM delta d WHERE r.id = d.id \
        RETURNING r.id, r.spend_nanos, r.input_tokens, r.output_tokens, r.steps_count, r.last_activity_at",
        parts.join(", "),
        released("amount"),
        released("tokens"),
        released("holds"),
    )
}

async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    w: &Writes,
    deltas: &BTreeMap<String, RunDelta>,
    books: &HashMap<String, Books>,
) -> StoreResult<HashMap<String, RunTotals>> {
    if deltas.is_empty() {
        return Ok(HashMap::new());
    }
    let spend_kinds: Vec<&str> = crate::budget::LedgerKind::ALL
        .iter()
        .filter(|k| k.is_spend())
        .map(|k| k.as_str())
        .collect();
    let ids: Vec<&str> = deltas.keys().map(String::as_str).collect();
    let pick = |f: fn(&RunDelta) -> i64| deltas.values().map(f).collect::<Vec<i64>>();
    let (seqs, heads): (Vec<Option<i64>>, Vec<Option<&str>>) = deltas
        .iter()
        .map(|(id, d)| match books.get(id) {
            Some(b) if d.touched_audit => (Some(b.audit.seq), Some(b.audit.hash.as_str())),
            _ => (None, None),
        })
        .unzip();
    let mut bucket_keys = Vec::with_capacity(w.buckets.len());
    let mut bucket_ids = Vec::with_capacity(w.buckets.len());
    let mut bucket_calls = Vec::with_capacity(w.buckets.len());
    let mut bucket_tokens = Vec::with_capacity(w.buckets.len());
    let mut bucket_first = Vec::with_capacity(w.buckets.len());
    let mut minute_agents = Vec::with_capacity(w.agent_minutes.len());
    let mut minutes = Vec::with_capacity(w.agent_minutes.len());
    let mut minute_costs = Vec::with_capacity(w.agent_minutes.len());
    for ((agent, minute), cost) in &w.agent_minutes {
        minute_agents.push(agent.as_str());
        minutes.push(*minute);
        minute_costs.push(*cost);
    }
    for ((key, bucket), (calls, tokens, first)) in &w.buckets {
        bucket_keys.push(key.as_str());
        bucket_ids.push(*bucket);
        bucket_calls.push(*calls);
        bucket_tokens.push(*tokens);
        bucket_first.push(*first);
    }
    let sql = apply_sql(w);
    let rows = sqlx::query(&sql)
        .bind(&w.ev_run)
        .bind(&w.ev_seq)
        .bind(&w.ev_kind)
        .bind(&w.ev_actor)
        .bind(&w.ev_data)
        .bind(&w.ev_at)
        .bind(&w.ev_prev)
        .bind(&w.ev_hash)
        .bind(&w.st_id)
        .bind(&w.st_run)
        .bind(&w.st_agent)
        .bind(&w.st_kind)
        .bind(&w.st_provider)
        .bind(&w.st_model)
        .bind(&w.st_input)
        .bind(&w.st_output)
        .bind(&w.st_cost)
        .bind(&w.st_latency)
        .bind(&w.st_status)
        .bind(&w.st_http)
        .bind(&w.st_error)
        .bind(&w.st_request)
        .bind(&w.st_response)
        .bind(&w.st_at)
        .bind(&w.le_run)
        .bind(&w.le_step)
        .bind(&w.le_kind)
        .bind(&w.le_amount)
        .bind(&w.le_at)
        .bind(&w.gone_run)
        .bind(&w.gone_hold)
        .bind(&w.ho_run)
        .bind(&w.ho_id)
        .bind(&w.ho_gateway)
        .bind(&w.ho_amount)
        .bind(&w.ho_tokens)
        .bind(&w.ho_at)
        .bind(&w.ho_expires)
        .bind(&bucket_keys)
        .bind(&bucket_ids)
        .bind(&bucket_calls)
        .bind(&bucket_tokens)
        .bind(&bucket_first)
        .bind(&spend_kinds)
        .bind(&ids)
        .bind(pick(|d| d.input))
        .bind(pick(|d| d.output))
        .bind(pick(|d| d.steps))
        .bind(pick(|d| d.last_activity))
        .bind(pick(|d| d.reserved))
        .bind(pick(|d| d.reserved_tokens))
        .bind(pick(|d| d.in_flight))
        .bind(&seqs)
        .bind(&heads)
        .bind(&minute_agents)
        .bind(&minutes)
        .bind(&minute_costs)
        .bind(&w.st_price_version)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| crate::store::sql::conflict_or(e, "this step is already recorded"))?;
    let mut totals = HashMap::with_capacity(rows.len());
    for row in &rows {
        totals.insert(
            row.try_get::<String, _>(0)?,
            RunTotals {
                spend: UsdNanos(row.try_get(1)?),
                input_tokens: to_u64(row.try_get(2)?),
                output_tokens: to_u64(row.try_get(3)?),
                steps_count: to_u64(row.try_get(4)?),
                last_activity_ms: row.try_get(5)?,
            },
        );
    }
    Ok(totals)
}
