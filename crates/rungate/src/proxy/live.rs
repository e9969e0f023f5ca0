//! The live view of open runs: one owner per run holding its pinned policy, caps and books
//! (committed spend plus the holds of calls in flight), so concurrent calls of a run see each
//! other's spend and reservations without a database round trip. The store stays the source of truth — totals are refreshed from what `record_step`
//! returns, and a run missing here is loaded from the store — so a restart loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use std::sync::{Arc, Mutex};

use crate::budget::{Books, Caps, Enforcement, HourlySpend};
use crate::money::UsdNanos;
use crate::policy::{PolicyVersion, RateWindow};
use crate::run::{Run, RunId, RunTotals};

/// An open run as the proxy sees it.
#[derive(Debug)]
pub struct LiveRun {
    pub id: RunId,
    pub team: String,
    pub policy: Option<Arc<PolicyVersion>>,
    pub idle_ms: i64,
    /// The caps pinned with the policy; see [`LiveRun::caps`] for the ones in force.
    pinned_caps: Caps,
    /// A USD cap an approver raised the run to, in nano-dollars; 0 while none.
    raised_usd: AtomicI64,
    pub books: Books,
    /// This run's `rate_limits` window.
    pub rate: RateWindow,
    /// Spend at which `budget.alert` fires (`alert_at` × cap); the store decides when a step
    /// crosses it.
    pub alert_threshold: Option<UsdNanos>,
    budget_exceeded: AtomicBool,
    /// Tool calls the model proposed in this run, by tool (reported ones are steps in the store).
    proposals: Mutex<HashMap<String, u64>>,
    last_activity_ms: AtomicI64,
    closed: AtomicBool,
}

impl LiveRun {
    pub fn new(run: &Run, policy: Option<Arc<PolicyVersion>>, default_idle_ms: i64) -> LiveRun {
        let caps = caps_of(policy.as_deref());
        let threshold = alert_threshold(policy.as_deref(), caps.usd);
        LiveRun {
            id: run.id.clone(),
            team: run.team.clone(),
            policy,
            idle_ms: run.idle_timeout_ms.unwrap_or(default_idle_ms),
            pinned_caps: caps,
            raised_usd: AtomicI64::new(run.budget_limit.map_or(0, |l| l.0)),
            rate: RateWindow::default(),
            alert_threshold: threshold,
            budget_exceeded: AtomicBool::new(false),
            proposals: Mutex::default(),
            books: Books::new(
                run.spend,
                run.input_tokens + run.output_tokens,
                run.steps_count,
            ),
            last_activity_ms: AtomicI64::new(run.last_activity_ms),
            closed: AtomicBool::new(false),
        }
    }

    pub fn spend(&self) -> UsdNanos {
        self.books.committed().0
    }

    pub fn tokens(&self) -> u64 {
        self.books.committed().1
    }

    /// Adopts the totals the store committed (they include every concurrent step).
    pub fn refresh(&self, totals: &RunTotals) {
        self.books.adopt(
            totals.spend,
            totals.input_tokens + totals.output_tokens,
            totals.steps_count,
        );
        self.touch(totals.last_activity_ms);
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_activity_ms.fetch_max(now_ms, Ordering::AcqRel);
    }

    pub fn idle_since(&self, now_ms: i64) -> bool {
        now_ms - self.last_activity_ms.load(Ordering::Acquire) > self.idle_ms
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// True exactly once: the first time the run's budget refuses a call.
    pub fn first_exceeded(&self) -> bool {
        !self.budget_exceeded.swap(true, Ordering::AcqRel)
    }

    /// Counts proposals of `tool`; returns how many there were before these.
    pub fn record_proposals(&self, tool: &str, count: u64) -> u64 {
        let mut proposals = lock(&self.proposals);
        let seen = proposals.entry(tool.to_owned()).or_insert(0);
        let before = *seen;
        *seen += count;
        before
    }

    /// Proposals of `tool` counted so far in this process.
    pub fn proposals_of(&self, tool: &str) -> u64 {
        lock(&self.proposals).get(tool).copied().unwrap_or(0)
    }

    /// The caps in force: the pinned ones, with the USD cap an approver raised, if any.
    pub fn caps(&self) -> Caps {
        match self.raised_usd.load(Ordering::Acquire) {
            0 => self.pinned_caps,
            raised => Caps {
                usd: Some(UsdNanos(raised)),
                ..self.pinned_caps
            },
        }
    }

    /// Adopts a USD cap an approver raised the run to (already committed to the store).
    pub fn raise_usd_limit(&self, limit: UsdNanos) {
        self.raised_usd.store(limit.0.max(1), Ordering::Release);
    }

    pub fn hard_limit(&self) -> Option<UsdNanos> {
        self.caps().usd
    }

    pub fn token_limit(&self) -> Option<u64> {
        self.pinned_caps.tokens
    }
}

fn alert_threshold(policy: Option<&PolicyVersion>, cap: Option<UsdNanos>) -> Option<UsdNanos> {
    let alert_at = policy?.document.budget.as_ref()?.alert_at?;
    Some(UsdNanos((cap?.0 as f64 * alert_at).round() as i64))
}

/// The caps a policy version sets; none without a policy.
fn caps_of(policy: Option<&PolicyVersion>) -> Caps {
    let max_steps = policy.and_then(|p| p.document.max_steps);
    let Some(budget) = policy.and_then(|p| p.document.budget.as_ref()) else {
        return Caps {
            max_steps,
            ..Caps::NONE
        };
    };
    Caps {
        max_steps,
        usd: budget.hard_limit_usd.and_then(UsdNanos::from_usd),
        tokens: budget.hard_limit_tokens,
        enforcement: match budget.enforcement.as_deref() {
            Some("crossed") => Enforcement::Crossed,
            _ => Enforcement::Projected,
        },
        clamp_max_tokens: budget.clamp_max_tokens.unwrap_or(false),
    }
}

/// Open runs by id, and each agent's current auto-run.
#[derive(Default)]
pub struct LiveRuns {
    runs: Mutex<HashMap<RunId, Arc<LiveRun>>>,
    auto: Mutex<HashMap<String, RunId>>,
    agent_rates: Mutex<HashMap<String, Arc<RateWindow>>>,
    agent_hours: Mutex<HashMap<String, Arc<HourlySpend>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LiveRuns {
    pub fn get(&self, id: &RunId) -> Option<Arc<LiveRun>> {
        lock(&self.runs).get(id).cloned()
    }

    /// Inserts `run` unless another call got there first; returns the one that is live.
    pub fn insert(&self, run: Arc<LiveRun>) -> Arc<LiveRun> {
        lock(&self.runs)
            .entry(run.id.clone())
            .or_insert(run)
            .clone()
    }

    /// The agent's `rate_limits` window, shared by all its runs.
    pub fn agent_rate(&self, agent_id: &str) -> Arc<RateWindow> {
        let mut rates = lock(&self.agent_rates);
        match rates.get(agent_id) {
            Some(window) => window.clone(),
            None => rates.entry(agent_id.to_owned()).or_default().clone(),
        }
    }

    /// The agent's last-hour spend, if it has been seeded since the start.
    pub fn agent_hour(&self, agent_id: &str) -> Option<Arc<HourlySpend>> {
        lock(&self.agent_hours).get(agent_id).cloned()
    }

    /// Installs a seeded window unless another call did first; returns the one in place.
    pub fn seed_agent_hour(&self, agent_id: &str, window: HourlySpend) -> Arc<HourlySpend> {
        lock(&self.agent_hours)
            .entry(agent_id.to_owned())
            .or_insert_with(|| Arc::new(window))
            .clone()
    }

    /// Open runs pinned to a version of `policy_id`.
    pub fn pinned_to(&self, policy_id: &str) -> Vec<Arc<LiveRun>> {
        lock(&self.runs)
            .values()
            .filter(|run| {
                run.policy
                    .as_ref()
                    .is_some_and(|p| p.policy_id == policy_id)
            })
            .cloned()
            .collect()
    }

    pub fn current_auto(&self, agent_id: &str) -> Option<Arc<LiveRun>> {
        let id = lock(&self.auto).get(agent_id).cloned()?;
        self.get(&id)
    }

    pub fn set_auto(&self, agent_id: &str, id: RunId) {
        lock(&self.auto).insert(agent_id.to_owned(), id);
    }

    /// Marks the run closed and drops it; later calls find it closed in the store.
    pub fn close(&self, id: &RunId) {
        if let Some(run) = lock(&self.runs).remove(id) {
            run.closed.store(true, Ordering::Release);
        }
        lock(&self.auto).retain(|_, run_id| run_id != id);
    }

    pub fn len(&self) -> usize {
        lock(&self.runs).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
