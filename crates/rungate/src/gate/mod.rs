//! Approval gates (SPEC §6): a call that matches an approval rule pauses its run until a person
//! decides. This module owns what a gate *is* — its identity, its state machine, and the
//! request fingerprint that ties an agent's retry to the request that was reviewed — and the
//! pure decision of what a retry gets. It knows nothing of HTTP or SQL: the proxy asks it, the
//! store persists it.
//!
//! The promise is narrow on purpose: an approval lets exactly one retry of exactly the request
//! that was reviewed through. A gate is `pending` until an approver moves it to `approved` or
//! `rejected`, or its time runs out (`expired`). An approved gate is *consumed* by the first
//! matching retry (a conditional update in the store, so concurrent retries cannot both win);
//! after that the same request needs a new approval.

mod fingerprint;
pub mod rule;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use fingerprint::fingerprint;
pub use rule::{GateRule, RuleError, matching_rules};

/// Gates expire after an hour unless their rule says otherwise.
pub const DEFAULT_EXPIRES_IN_S: u64 = 3600;

/// An agent retries a gated call after this many seconds (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 5;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GateId(pub String);

impl GateId {
    pub fn generate() -> GateId {
        GateId(format!("apr_{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl GateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pending => "pending",
            GateStatus::Approved => "approved",
            GateStatus::Rejected => "rejected",
            GateStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<GateStatus> {
        match raw {
            "pending" => Some(GateStatus::Pending),
            "approved" => Some(GateStatus::Approved),
            "rejected" => Some(GateStatus::Rejected),
            "expired" => Some(GateStatus::Expired),
            _ => None,
        }
    }
}

/// What opened the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The request declared a tool listed in `require_approval`; nothing was forwarded.
    DeclaredTool,
    /// The model's answer proposed a tool call matching a `gates` rule; the answer is held.
    ProposedAction,
    /// The agent reported a tool step matching a rule; the step is not recorded yet.
    ReportedTool,
    /// The call would cross the run's USD cap under `budget.on_exceed: approval`; approving
    /// raises the cap.
    Budget,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::DeclaredTool => "declared_tool",
            Trigger::ProposedAction => "proposed_action",
            Trigger::ReportedTool => "reported_tool",
            Trigger::Budget => "budget",
        }
    }

    pub fn parse(raw: &str) -> Option<Trigger> {
        match raw {
            "declared_tool" => Some(Trigger::DeclaredTool),
            "proposed_action" => Some(Trigger::ProposedAction),
            "reported_tool" => Some(Trigger::ReportedTool),
            "budget" => Some(Trigger::Budget),
            _ => None,
        }
    }
}

/// The model's answer kept by a proposed-action gate: returned to the approved retry instead of
/// a second upstream call, so the call is charged once.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The step that was charged for it.
    pub step_id: String,
}

/// The approver's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: GateStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub at_ms: i64,
    /// For a budget gate being approved: the run's new USD cap, committed with the decision.
    pub raise_limit: Option<crate::money::UsdNanos>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub id: GateId,
    pub run_id: String,
    pub agent_id: String,
    pub trigger: Trigger,
    /// `require_approval`, or the `gates` rule's id.
    pub rule: String,
    pub tool: String,
    pub args: Value,
    pub approver_channel: Option<String>,
    /// Ties the retry to the reviewed request (see [`fingerprint`]).
    pub fingerprint: String,
    pub status: GateStatus,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    /// When the one retry an approval grants went through.
    pub consumed_at_ms: Option<i64>,
    pub held: Option<HeldAnswer>,
}

impl Gate {
    /// Pending, but its time is up: to be recorded as expired.
    pub fn is_overdue(&self, now_ms: i64) -> bool {
        self.status == GateStatus::Pending && now_ms >= self.expires_at_ms
    }

    /// Waiting for a person right now.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.status == GateStatus::Pending && now_ms < self.expires_at_ms
    }

    /// Approved and not yet used by a retry.
    pub fn is_usable(&self) -> bool {
        self.status == GateStatus::Approved && self.consumed_at_ms.is_none()
    }
}

/// What a call gets from the gates of its run, decided before anything is forwarded.
#[derive(Debug, PartialEq)]
pub enum Verdict<'a> {
    /// No gate concerns this call.
    Proceed,
    /// Approved gates for exactly this request: consume them, then return the held answer or
    /// forward without asking again.
    Approved(Vec<&'a Gate>),
    /// The run is paused behind these gates (this request's, or another call's): 202.
    Waiting(Vec<&'a Gate>),
    /// Gates for this request that an approver rejected: 403 `approval_rejected`.
    Rejected(&'a Gate),
    /// Gates for this request whose time ran out: 403 `approval_expired`.
    Expired(&'a Gate),
    /// This request's approval was already used by an earlier retry: ask again.
    Spent(Vec<&'a Gate>),
}

/// The verdict for a call with `fingerprint` in a run whose gates are `gates` (any order).
/// Overdue gates must have been expired by the caller (see [`Gate::is_overdue`]).
pub fn verdict<'a>(gates: &'a [Gate], fingerprint: &str, now_ms: i64) -> Verdict<'a> {
    // This request's most recent group of gates (one per gated tool, opened together).
    let latest = gates
        .iter()
        .filter(|g| g.fingerprint == fingerprint)
        .map(|g| g.created_at_ms)
        .max();
    if let Some(at) = latest {
        let group: Vec<&Gate> = gates
            .iter()
            .filter(|g| g.fingerprint == fingerprint && g.created_at_ms == at)
            .collect();
        if let Some(rejected) = group.iter().find(|g| g.status == GateStatus::Rejected) {
            return Verdict::Rejected(rejected);
        }
        if let Some(expired) = group
            .iter()
            .find(|g| g.status == GateStatus::Expired || g.is_overdue(now_ms))
        {
            return Verdict::Expired(expired);
        }
        if group.iter().any(|g| g.status == GateStatus::Pending) {
            return Verdict::Waiting(group);
        }
        if group.iter().all(|g| g.is_usable()) {
            return Verdict::Approved(group);
        }
        return Verdict::Spent(group);
    }
    let open: Vec<&Gate> = gates.iter().filter(|g| g.is_open(now_ms)).collect();
    if open.is_empty() {
        Verdict::Proceed
    } else {
        Verdict::Waiting(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(fp: &str, status: GateStatus, created: i64) -> Gate {
        Gate {
            id: GateId::generate(),
            run_id: "r".into(),
            agent_id: "a".into(),
            trigger: Trigger::DeclaredTool,
            rule: "require_approval".into(),
            tool: "execute_code".into(),
            args: Value::Null,
            approver_channel: None,
            fingerprint: fp.into(),
            status,
            created_at_ms: created,
            expires_at_ms: created + 1000,
            decided_at_ms: None,
            decided_by: None,
            reason: None,
            consumed_at_ms: None,
            held: None,
        }
    }

    fn name(v: &Verdict<'_>) -> &'static str {
        match v {
            Verdict::Proceed => "proceed",
            Verdict::Approved(_) => "approved",
            Verdict::Waiting(_) => "waiting",
            Verdict::Rejected(_) => "rejected",
            Verdict::Expired(_) => "expired",
            Verdict::Spent(_) => "spent",
        }
    }

    #[test]
    fn a_retry_meets_its_own_latest_gates_first() {
        let check = |gates: &[Gate], fp: &str, now: i64, expected: &str| {
            assert_eq!(name(&verdict(gates, fp, now)), expected, "{fp} at {now}")
        };
        check(&[], "x", 0, "proceed");
        check(&[gate("x", GateStatus::Pending, 0)], "x", 10, "waiting");
        check(&[gate("x", GateStatus::Pending, 0)], "x", 1000, "expired");
        // Another request in a paused run waits behind the open gate, not behind an old one.
        check(&[gate("x", GateStatus::Pending, 0)], "y", 10, "waiting");
        check(&[gate("x", GateStatus::Pending, 0)], "y", 1000, "proceed");
        check(&[gate("x", GateStatus::Approved, 0)], "x", 10, "approved");
        check(&[gate("x", GateStatus::Approved, 0)], "y", 10, "proceed");
        check(&[gate("x", GateStatus::Rejected, 0)], "x", 10, "rejected");
        check(&[gate("x", GateStatus::Expired, 0)], "x", 10, "expired");
        let mut used = gate("x", GateStatus::Approved, 0);
        used.consumed_at_ms = Some(5);
        check(std::slice::from_ref(&used), "x", 10, "spent");
        // A new request for approval after the spent one: its newer group decides.
        check(
            &[used, gate("x", GateStatus::Pending, 7)],
            "x",
            10,
            "waiting",
        );
    }

    #[test]
    fn every_gate_of_a_group_must_be_approved() {
        let gates = [
            gate("x", GateStatus::Approved, 0),
            gate("x", GateStatus::Pending, 0),
        ];
        assert!(matches!(verdict(&gates, "x", 1), Verdict::Waiting(g) if g.len() == 2));
        let gates = [
            gate("x", GateStatus::Approved, 0),
            gate("x", GateStatus::Rejected, 0),
        ];
        assert!(matches!(verdict(&gates, "x", 1), Verdict::Rejected(_)));
    }
}
