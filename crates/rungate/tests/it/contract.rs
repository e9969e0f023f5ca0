//! The storage contract: the promises every backend behind the store traits must keep, written
//! against `Stores` alone so that the same suite runs on each backend (SQLite and PostgreSQL). The
//! concurrency-sensitive ones are what several gateways on one database will lean on: a consumed
//! approval is consumed once, a decision is taken once, identical requests share one gate, a
//! webhook delivery is leased to one worker, names are unique. And a dashboard session is only
//! ever found while it is live. A price table, a key's prices and a step's price version read
//! back as written.

use std::sync::Arc;

use rungate::audit::AuditEvent;
use rungate::budget::{LedgerEntry, LedgerKind};
use rungate::gate::{Decision, Gate, GateId, GateStatus, Trigger};
use rungate::money::UsdNanos;
use rungate::run::{Run, RunId, RunStatus, Step, StepId, StepKind, StepStatus};
use rungate::security::TokenHash;
use rungate::store::{Agent, AgentStatus, DashboardSession, Scope, StepRecord, StoreError, Stores};
use serde_json::json;

use crate::harness::TestResult;

fn event(kind: &'static str) -> AuditEvent {
    AuditEvent {
        kind,
        actor: "agent:contract".into(),
        data: json!({}),
        at_ms: 1,
    }
}

fn run(id: &str) -> Run {
    Run {
        id: RunId(id.into()),
        agent_id: "agt_contract".into(),
        team: "agent:agt_contract".into(),
        policy_id: None,
        policy_version: None,
        status: RunStatus::Running,
        auto: false,
        spend: rungate::money::UsdNanos::ZERO,
        input_tokens: 0,
        output_tokens: 0,
        steps_count: 0,
        started_at_ms: 1,
        last_activity_ms: 1,
        idle_timeout_ms: None,
        ended_at_ms: None,
        ended_reason: None,
        metadata: json!({}),
        budget_limit: None,
    }
}

fn gate(run_id: &str, fingerprint: &str, now: i64) -> Gate {
    Gate {
        id: GateId::generate(),
        run_id: run_id.into(),
        agent_id: "agt_contract".into(),
        trigger: Trigger::DeclaredTool,
        rule: "require_approval".into(),
        tool: "execute_code".into(),
        args: json!(null),
        approver_channel: None,
        fingerprint: fingerprint.into(),
        status: GateStatus::Pending,
        created_at_ms: now,
        expires_at_ms: now + 60_000,
        decided_at_ms: None,
        decided_by: None,
        reason: None,
        consumed_at_ms: None,
        held: None,
    }
}

fn agent(id: &str, name: &str) -> Agent {
    Agent {
        id: id.into(),
        name: name.into(),
        token_hash: TokenHash(format!("hash-of-{id}")),
        token_prefix: "rg_agt_x".into(),
        team: None,
        policy_id: None,
        provider_keys: Default::default(),
        status: AgentStatus::Active,
        metadata: json!({}),
        created_at_ms: 1,
        updated_at_ms: 1,
    }
}

/// Every promise of the contract, against one backend.
async fn contract(stores: Stores) -> TestResult {
    names_are_unique_and_missing_rows_are_not_found(&stores).await?;
    identical_requests_share_one_open_gate(&stores).await?;
    a_gate_is_decided_once_and_consumed_once(&stores).await?;
    a_due_delivery_is_leased_to_one_worker(&stores).await?;
    concurrent_steps_add_up_and_a_bad_one_fails_alone(&stores).await?;
    settling_the_same_step_twice_charges_once(&stores).await?;
    a_session_is_found_only_until_it_expires_or_is_revoked(&stores).await?;
    the_newest_price_table_and_prices_read_back_as_written(&stores).await?;
    Ok(())
}

/// The newest import is the one found; re-importing a version refreshes it; a key's prices and
/// a step's price version survive the round trip.
async fn the_newest_price_table_and_prices_read_back_as_written(stores: &Stores) -> TestResult {
    use rungate::store::{KeyStatus, PriceTableRecord, ProviderKeyRecord};
    assert_eq!(stores.prices.latest_price_table().await?, None);
    assert_eq!(stores.prices.latest_price_version().await?, None);
    let table = |version: &str, at: i64| PriceTableRecord {
        version: version.into(),
        source: "litellm".into(),
        models: 2,
        skipped: 1,
        prices: r#"{"m":{"input":1,"output":2,"cached_input":null}}"#.into(),
        imported_at_ms: at,
    };
    stores
        .prices
        .save_price_table(&table("litellm-a", 10))
        .await?;
    stores
        .prices
        .save_price_table(&table("litellm-b", 20))
        .await?;
    assert_eq!(
        stores.prices.latest_price_table().await?,
        Some(table("litellm-b", 20))
    );
    stores
        .prices
        .save_price_table(&table("litellm-a", 30))
        .await?;
    assert_eq!(
        stores.prices.latest_price_table().await?,
        Some(table("litellm-a", 30))
    );
    assert_eq!(
        stores.prices.latest_price_version().await?,
        Some(("litellm-a".to_owned(), 30))
    );

    let mut key = ProviderKeyRecord {
        id: "pk_priced".into(),
        provider: "openai_compatible".into(),
        name: "priced".into(),
        encrypted_key: "v1:x".into(),
        key_suffix: "...x".into(),
        base_url: Some("http://127.0.0.1:1".into()),
        status: KeyStatus::Active,
        pricing: Default::default(),
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    stores.keys.create_key(&key).await?;
    assert!(stores.keys.get_key("pk_priced").await?.pricing.is_empty());
    key.pricing.insert(
        "*".into(),
        rungate::config::PriceOverride {
            input_per_million: 0.5,
            output_per_million: 1.5,
            cached_input_per_million: Some(0.05),
        },
    );
    stores.keys.update_key(&key).await?;
    assert_eq!(stores.keys.get_key("pk_priced").await?, key);

    stores
        .runs
        .create_run(&run("priced"), event("run.started"))
        .await?;
    stores.runs.record_step(&step("priced", 3)).await?;
    let mut unpriced = step("priced", 0);
    unpriced.step.price_version = None;
    stores.runs.record_step(&unpriced).await?;
    let (steps, _) = stores
        .runs
        .steps(
            &RunId("priced".into()),
            rungate::store::Page::default(),
            true,
        )
        .await?;
    let versions: Vec<Option<&str>> = steps.iter().map(|s| s.price_version.as_deref()).collect();
    assert_eq!(versions, [Some("litellm-0123456789ab"), None]);
    Ok(())
}

fn session(secret: &str, expires_at_ms: i64) -> DashboardSession {
    DashboardSession {
        id: format!("ses_{secret}"),
        token_hash: TokenHash(format!("hash-of-{secret}")),
        actor: "admin:adm_contract".into(),
        admin_token_id: Some("adm_contract".into()),
        password_check: None,
        scopes: vec![Scope::Read, Scope::Approve],
        created_at_ms: 1,
        expires_at_ms,
        revoked_at_ms: None,
    }
}

async fn a_session_is_found_only_until_it_expires_or_is_revoked(stores: &Stores) -> TestResult {
    let now = rungate::run::now_ms();
    let live = session("live", now + 60_000);
    let kept = session("kept", now + 60_000);
    let stale = session("stale", now - 1);
    for s in [&live, &kept, &stale] {
        stores.sessions.create_session(s).await?;
    }
    let twin = stores
        .sessions
        .create_session(&DashboardSession {
            id: "ses_twin".into(),
            ..live.clone()
        })
        .await;
    assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");

    let found = stores
        .sessions
        .session_by_hash(&live.token_hash, now)
        .await?;
    assert_eq!(found.as_ref(), Some(&live), "every field round-trips");
    let at_expiry = stores
        .sessions
        .session_by_hash(&live.token_hash, live.expires_at_ms)
        .await?;
    assert_eq!(at_expiry, None, "a session is over at its expiry");
    assert_eq!(
        stores
            .sessions
            .session_by_hash(&stale.token_hash, now)
            .await?,
        None
    );

    assert!(
        stores
            .sessions
            .revoke_session(&live.token_hash, now)
            .await?
    );
    assert!(
        !stores
            .sessions
            .revoke_session(&live.token_hash, now)
            .await?
    );
    assert_eq!(
        stores
            .sessions
            .session_by_hash(&live.token_hash, now)
            .await?,
        None
    );
    assert_eq!(stores.sessions.delete_ended_sessions(now).await?, 2);
    assert_eq!(
        stores
            .sessions
            .session_by_hash(&kept.token_hash, now)
            .await?,
        Some(kept)
    );
    Ok(())
}

/// A retried settlement (a new step row, the same ledger key) adds nothing to the spend.
async fn settling_the_same_step_twice_charges_once(stores: &Stores) -> TestResult {
    stores
        .runs
        .create_run(&run("replayed"), event("run.started"))
        .await?;
    let mut record = step("replayed", 50);
    stores.runs.record_step(&record).await?;
    let ledger_key = record.ledger[0].step_id.clone();
    record.step.id = StepId::generate();
    record.ledger[0].step_id = ledger_key;
    let totals = stores.runs.record_step(&record).await?;
    assert_eq!(totals.spend, UsdNanos(50));
    let id = RunId("replayed".into());
    assert_eq!(stores.runs.get_run(&id).await?.spend, UsdNanos(50));
    let ledger: i64 = stores
        .runs
        .ledger(&id)
        .await?
        .iter()
        .map(|e| e.amount.0)
        .sum();
    assert_eq!(ledger, 50, "one settlement in the ledger");
    Ok(())
}

fn step(run_id: &str, cost: i64) -> StepRecord {
    let id = StepId::generate();
    StepRecord {
        ledger: vec![LedgerEntry {
            kind: LedgerKind::Settlement,
            step_id: id.0.clone(),
            amount: UsdNanos(cost),
            created_at_ms: 2,
        }],
        audit: vec![event("step.recorded")],
        hold_id: None,
        alert: None,
        step: Step {
            id,
            run_id: RunId(run_id.into()),
            agent_id: "agt_contract".into(),
            kind: StepKind::LlmCall,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost: UsdNanos(cost),
            latency_ms: 1,
            status: StepStatus::Success,
            http_status: Some(200),
            error_message: None,
            request: None,
            response: None,
            created_at_ms: 2,
            price_version: Some("litellm-0123456789ab".into()),
        },
    }
}

/// Steps settled at once (as a busy run's are, by one gateway or several) all count, chain in
/// one chain, and a step for a run that does not exist fails without failing its neighbours.
async fn concurrent_steps_add_up_and_a_bad_one_fails_alone(stores: &Stores) -> TestResult {
    stores
        .runs
        .create_run(&run("busy"), event("run.started"))
        .await?;
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let runs = stores.runs.clone();
            let target = if i % 10 == 0 { "ghost" } else { "busy" };
            tokio::spawn(async move { runs.record_step(&step(target, 7)).await })
        })
        .collect();
    let (mut ok, mut missing) = (0, 0);
    for call in calls {
        match call.await? {
            Ok(_) => ok += 1,
            Err(StoreError::NotFound) => missing += 1,
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!((ok, missing), (180, 20));
    let id = RunId("busy".into());
    let busy = stores.runs.get_run(&id).await?;
    assert_eq!((busy.steps_count, busy.spend), (180, UsdNanos(180 * 7)));
    let ledger: i64 = stores
        .runs
        .ledger(&id)
        .await?
        .iter()
        .map(|e| e.amount.0)
        .sum();
    assert_eq!(ledger, 180 * 7);
    let events = stores.runs.audit_events(&id).await?;
    assert_eq!(events.len(), 181);
    assert_eq!(
        rungate::audit::verify(&events, &stores.runs.audit_head(&id).await?),
        Ok(())
    );
    Ok(())
}

async fn names_are_unique_and_missing_rows_are_not_found(stores: &Stores) -> TestResult {
    stores
        .agents
        .create_agent(&agent("agt_1", "unique"))
        .await?;
    let twin = stores.agents.create_agent(&agent("agt_2", "unique")).await;
    assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");
    assert!(matches!(
        stores.agents.get_agent("agt_404").await,
        Err(StoreError::NotFound)
    ));
    let by_token = stores
        .agents
        .agent_by_token(&TokenHash("hash-of-agt_1".into()))
        .await?;
    assert_eq!(by_token.name, "unique");
    assert!(matches!(
        stores.gates.get_gate(&GateId("apr_missing".into())).await,
        Err(StoreError::NotFound)
    ));
    Ok(())
}

async fn identical_requests_share_one_open_gate(stores: &Stores) -> TestResult {
    stores
        .runs
        .create_run(&run("contract-share"), event("run.started"))
        .await?;
    let now = rungate::run::now_ms();
    let opens = (0..20).map(|_| {
        stores.gates.open_gates(
            vec![gate("contract-share", "fp-same", now)],
            vec![event("approval.pending")],
            now,
        )
    });
    let opened = futures::future::join_all(opens).await;
    let mut ids: Vec<String> = Vec::new();
    for gates in opened {
        ids.push(gates?[0].id.0.clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "twenty identical requests, one gate");
    assert_eq!(stores.gates.run_gates("contract-share").await?.len(), 1);
    Ok(())
}

async fn a_gate_is_decided_once_and_consumed_once(stores: &Stores) -> TestResult {
    stores
        .runs
        .create_run(&run("contract-once"), event("run.started"))
        .await?;
    let now = rungate::run::now_ms();
    let open = |fingerprint: &'static str| {
        stores.gates.open_gates(
            vec![gate("contract-once", fingerprint, now)],
            vec![event("approval.pending")],
            now,
        )
    };
    let decision = |status| Decision {
        status,
        actor: "admin:contract".into(),
        reason: None,
        at_ms: now,
        raise_limit: None,
    };

    // Three approvers at once: one decision stands, and it is the one the gate shows.
    let raced = open("fp-decided").await?[0].id.clone();
    let decisions = [
        GateStatus::Approved,
        GateStatus::Rejected,
        GateStatus::Approved,
    ]
    .map(|status| {
        let (stores, id) = (stores.clone(), raced.clone());
        async move {
            let decided = stores
                .gates
                .decide_gate(&id, &decision(status), event("approval.decided"))
                .await;
            (status, decided)
        }
    });
    let outcomes = futures::future::join_all(decisions).await;
    let winners: Vec<GateStatus> = outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(s, _)| *s)
        .collect();
    let refused = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!((winners.len(), refused), (1, 2), "one decision stands");
    assert_eq!(stores.gates.get_gate(&raced).await?.status, winners[0]);

    // Fifty retries at once on an approved gate: one uses the approval.
    let approved = open("fp-consumed").await?[0].id.clone();
    stores
        .gates
        .decide_gate(
            &approved,
            &decision(GateStatus::Approved),
            event("approval.approved"),
        )
        .await?;
    let consumers = (0..50).map(|_| {
        let (stores, ids) = (stores.clone(), vec![approved.clone()]);
        async move {
            stores
                .gates
                .consume_gates("contract-once", &ids, event("approval.consumed"), now)
                .await
        }
    });
    let won: Vec<bool> = futures::future::join_all(consumers)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "fifty consumers, one winner"
    );
    let events = stores
        .runs
        .audit_events(&RunId("contract-once".into()))
        .await?;
    let head = stores
        .runs
        .audit_head(&RunId("contract-once".into()))
        .await?;
    assert_eq!(rungate::audit::verify(&events, &head), Ok(()));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "approval.consumed")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "approval.decided")
            .count(),
        1
    );
    Ok(())
}

async fn a_due_delivery_is_leased_to_one_worker(stores: &Stores) -> TestResult {
    let now = rungate::run::now_ms();
    let hook = rungate::store::WebhookRecord {
        id: "whk_contract".into(),
        name: "contract".into(),
        url: "http://127.0.0.1:9/".into(),
        events: vec!["*".into()],
        encrypted_secret: "unused".into(),
        secret_prefix: "whsec_".into(),
        previous_encrypted_secret: None,
        previous_secret_until_ms: None,
        status: rungate::webhook::WebhookStatus::Active,
        created_at_ms: now,
        updated_at_ms: now,
    };
    stores.webhooks.create_webhook(&hook).await?;
    assert_eq!(
        stores
            .webhooks
            .enqueue("webhook.test", &json!({}), None, now)
            .await?,
        1
    );
    let workers = (0..8).map(|_| {
        let stores = stores.clone();
        async move { stores.webhooks.lease_due(now, now + 60_000, 10).await }
    });
    let leased: usize = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(|l| l.map(|d| d.len()))
        .sum::<Result<usize, _>>()?;
    assert_eq!(leased, 1, "eight workers, one lease");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_backend_keeps_the_storage_contract() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = rungate::store::sqlite::SqliteStore::open(&dir.path().join("contract.db")).await?;
    contract(Stores::from_backend(Arc::new(store))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_backend_keeps_the_storage_contract() -> TestResult {
    let Some(schema) = crate::pg::schema("contract").await? else {
        return Ok(());
    };
    let store = rungate::store::postgres::PgStore::connect(&schema.target()).await?;
    let kept = contract(Stores::from_backend(Arc::new(store.clone()))).await;
    store.pool().close().await;
    schema.drop().await?;
    kept
}

/// A gateway under steady traffic never leaves the writer idle long enough for a background
/// checkpoint to catch up; the WAL must still start over instead of growing with every call.
/// 20,000 steps write ~450 MB of WAL frames (22 KB each); the WAL restarts past 16 MB, plus
/// what is written before the writer sees the cue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_bounded_under_steady_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("wal.db");
    let wal = dir.path().join("wal.db-wal");
    let stores = Stores::from_backend(Arc::new(
        rungate::store::sqlite::SqliteStore::open(&path).await?,
    ));
    let id = RunId("steady".into());
    stores
        .runs
        .create_run(&run(&id.0), event("run.started"))
        .await?;
    let mut largest = 0;
    for _ in 0..20_000 {
        stores.runs.record_step(&step(&id.0, 1)).await?;
        largest = largest.max(std::fs::metadata(&wal)?.len());
    }
    assert!(
        largest < 96 * 1024 * 1024,
        "the WAL grew to {largest} bytes"
    );
    // Nothing was lost across the restarts: every step counted, the audit chain whole.
    let steady = stores.runs.get_run(&id).await?;
    assert_eq!(steady.steps_count, 20_000);
    assert_eq!(steady.spend, UsdNanos(20_000));
    let events = stores.runs.audit_events(&id).await?;
    assert_eq!(events.len(), 20_001);
    rungate::audit::verify(&events, &stores.runs.audit_head(&id).await?)
        .map_err(|broken| format!("audit chain broken: {broken:?}"))?;
    Ok(())
}
