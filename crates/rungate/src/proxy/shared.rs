//! The proxy's handle on the shared books (PostgreSQL, several gateways): who this gateway is,
//! how long its holds live without renewal, and the background work that keeps them honest —
//! renewing this gateway's holds while their calls run, and releasing the holds of gateways
//! that stopped renewing (killed, partitioned). With SQLite there is one gateway and none of
//! this exists: its books live in memory (`budget::Books`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::app::Gateway;
use crate::budget::Release;
use crate::run::{self, RunId};
use crate::store::HoldStore;

pub struct SharedBooks {
    pub store: Arc<dyn HoldStore>,
    /// This process, as the owner of its holds.
    pub gateway_id: String,
    /// How long a hold outlives its gateway's last renewal.
    pub hold_ttl_ms: i64,
    pub release: Arc<dyn Release>,
}

impl SharedBooks {
    pub fn new(store: Arc<dyn HoldStore>, hold_ttl: Duration, tasks: TaskTracker) -> SharedBooks {
        let gateway_id = format!("gw_{}", uuid::Uuid::now_v7().simple());
        SharedBooks {
            release: Arc::new(StoreRelease {
                store: store.clone(),
                tasks,
            }),
            store,
            gateway_id,
            hold_ttl_ms: i64::try_from(hold_ttl.as_millis())
                .unwrap_or(i64::MAX)
                .max(1000),
        }
    }

    pub fn expiry(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.hold_ttl_ms)
    }
}

/// Counts proposals of `tool` in `run` where the run's books are (the database when shared);
/// returns how many there were before.
pub async fn record_proposals(
    gw: &Gateway,
    run: &crate::proxy::live::LiveRun,
    tool: &str,
    count: u64,
) -> crate::store::StoreResult<u64> {
    match &gw.shared {
        Some(shared) => shared.store.record_proposals(&run.id, tool, count).await,
        None => Ok(run.record_proposals(tool, count)),
    }
}

/// Proposals of `tool` counted in the run `id`.
pub async fn proposals_of(gw: &Gateway, id: &RunId, tool: &str) -> crate::store::StoreResult<u64> {
    match &gw.shared {
        Some(shared) => shared.store.proposals(id, tool).await,
        None => Ok(gw.runs.get(id).map_or(0, |live| live.proposals_of(tool))),
    }
}

/// Releases an unsettled hold in a tracked task, so a graceful stop waits for it.
struct StoreRelease {
    store: Arc<dyn HoldStore>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for StoreRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreRelease")
    }
}

impl Release for StoreRelease {
    fn release(&self, run_id: &str, hold_id: &str) {
        let store = self.store.clone();
        let run_id = RunId(run_id.to_owned());
        let hold_id = hold_id.to_owned();
        self.tasks.spawn(async move {
            if let Err(err) = store.release(&run_id, &hold_id).await {
                tracing::warn!(run_id = %run_id, error = %err, "could not release a hold; it expires on its own");
            }
        });
    }
}

/// Renews this gateway's holds three times per TTL, and releases everyone's expired holds.
/// Runs until the gateway stops.
pub async fn keep_books(gw: Arc<Gateway>) {
    let Some(shared) = &gw.shared else {
        return;
    };
    let period = Duration::from_millis(u64::try_from(shared.hold_ttl_ms / 3).unwrap_or(1000));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = run::now_ms();
        if let Err(err) = shared
            .store
            .renew(&shared.gateway_id, now, shared.expiry(now))
            .await
        {
            tracing::warn!(error = %err, "could not renew this gateway's holds");
        }
        match shared.store.expire_holds(now).await {
            Ok(expired) => {
                for holds in expired {
                    tracing::info!(run_id = %holds.run_id, holds = holds.holds, released_nanos = holds.amount_nanos, "released expired holds");
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not release expired holds"),
        }
    }
}
