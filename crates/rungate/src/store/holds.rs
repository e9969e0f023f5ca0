//! The shared books: a run's budget holds and rate windows kept in the database, for a run whose
//! calls several gateways serve at once. One gateway can keep them in memory (`budget::Books`,
//! `policy::RateWindow`); several cannot — per-process counters would let N gateways admit N
//! times the cap. Admission here reads the run's committed totals and every gateway's holds
//! under the run's row lock, judges with the same functions the in-memory books use, and
//! records the hold and the rate-window entries in the same transaction.

use async_trait::async_trait;

use super::StoreResult;
use crate::budget::{Admission, CallEstimate, Caps, Refusal};
use crate::money::UsdNanos;
use crate::policy::{RateLimits, RateRefusal};
use crate::run::{JoinRefusal, RunId};

/// A rate window the call must fit: `run:<id>` or `agent:<id>`.
#[derive(Clone, Debug)]
pub struct RateCheck {
    pub key: String,
    /// `run` or `agent`, for the refusal.
    pub scope: &'static str,
    pub limits: RateLimits,
    pub tokens: u64,
}

/// The agent's sliding-hour USD cap the call must fit.
#[derive(Clone, Debug)]
pub struct HourlyCheck {
    pub agent_id: String,
    pub limit: UsdNanos,
    /// What the call may cost (its projected cost).
    pub estimate: UsdNanos,
}

/// One call asking for a hold.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub run_id: RunId,
    pub hold_id: String,
    pub gateway_id: String,
    /// The caps the run pinned; a USD cap an approver raised (on the run's row) replaces `usd`.
    pub caps: Caps,
    pub call: CallEstimate,
    pub rates: Vec<RateCheck>,
    pub hourly: Option<HourlyCheck>,
    pub now_ms: i64,
    /// When the hold lapses unless its gateway renews it.
    pub expires_at_ms: i64,
}

/// What the shared books answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserved {
    Admitted(Admission),
    Refused(Refusal),
    RateLimited {
        scope: &'static str,
        refusal: RateRefusal,
    },
    /// The agent's steps of the last hour, with this call, would pass its hourly cap.
    HourlyExceeded {
        spent: UsdNanos,
    },
    /// The run is no longer running (closed or stopped, perhaps on another gateway).
    Closed(JoinRefusal),
}

/// Holds lapsed by their gateway's silence and released, per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredHolds {
    pub run_id: RunId,
    pub holds: u64,
    pub amount_nanos: i64,
}

#[async_trait]
pub trait HoldStore: Send + Sync {
    async fn reserve(&self, reservation: Reservation) -> StoreResult<Reserved>;
    /// Why the run accepts no more calls, if it does not (closed or stopped, perhaps by
    /// another gateway): the one check a call with nothing to reserve needs.
    async fn refusal(&self, run_id: &RunId) -> StoreResult<Option<JoinRefusal>>;
    /// Counts `count` proposals of `tool` in the run; returns how many there were before.
    async fn record_proposals(&self, run_id: &RunId, tool: &str, count: u64) -> StoreResult<u64>;
    /// Proposals of `tool` counted in the run.
    async fn proposals(&self, run_id: &RunId, tool: &str) -> StoreResult<u64>;
    /// Gives a hold back (its call ended without a step); a hold already gone is no error.
    async fn release(&self, run_id: &RunId, hold_id: &str) -> StoreResult<()>;
    /// Extends the live holds of `gateway_id` to `expires_at_ms`; returns how many.
    async fn renew(&self, gateway_id: &str, now_ms: i64, expires_at_ms: i64) -> StoreResult<u64>;
    /// Releases holds whose time ran out, with a `budget.holds_expired` event on each run, and
    /// forgets rate-window entries older than the window.
    async fn expire_holds(&self, now_ms: i64) -> StoreResult<Vec<ExpiredHolds>>;
}
