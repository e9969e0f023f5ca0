//! Runs and steps: the unit Rungate governs. A run is one unit of agent work; a step is one
//! event in it that can cost money (a proxied model call or a reported tool call). This module
//! holds the identities, the status machine and the resolution rules of SPEC §3.2 as pure
//! functions; the live, in-memory view of open runs is in `proxy::live`.

use serde::{Deserialize, Serialize};

use crate::money::UsdNanos;

/// A run id: free-form, chosen by the agent or generated (`run_<uuidv7>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    pub fn generate() -> RunId {
        RunId(format!("run_{}", uuid::Uuid::now_v7().simple()))
    }

    /// Agent-chosen ids are free-form but bounded, so they stay usable in headers and URLs.
    pub fn parse(raw: &str) -> Option<RunId> {
        let ok = !raw.is_empty()
            && raw.len() <= 200
            && raw
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?' && b != b'#');
        ok.then(|| RunId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A step id: `step_<uuidv7>`, time-ordered so listing by id lists by time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl StepId {
    pub fn generate() -> StepId {
        StepId(format!("step_{}", uuid::Uuid::now_v7().simple()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Stopped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "completed" => Some(RunStatus::Completed),
            "stopped" => Some(RunStatus::Stopped),
            _ => None,
        }
    }
}

/// A run as stored. `spend` and token totals are derived from the ledger and steps, and are
/// kept on the row so reads are cheap.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub id: RunId,
    pub agent_id: String,
    /// The team whose agents may join: the agent's team, or `agent:<id>` for a team of one.
    pub team: String,
    pub policy_id: Option<String>,
    pub policy_version: Option<i64>,
    pub status: RunStatus,
    pub auto: bool,
    pub spend: UsdNanos,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub steps_count: u64,
    pub started_at_ms: i64,
    pub last_activity_ms: i64,
    /// Idle window pinned from the policy at start; `None` means the gateway default.
    pub idle_timeout_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub ended_reason: Option<String>,
    pub metadata: serde_json::Value,
    /// The USD cap an approver raised the run to (`budget.on_exceed: approval`); `None` keeps
    /// the pinned policy's.
    pub budget_limit: Option<UsdNanos>,
}

/// A run's running totals, as committed with its latest step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub spend: UsdNanos,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub steps_count: u64,
    pub last_activity_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    LlmCall,
    ToolCall,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Success,
    Error,
    Timeout,
    Blocked,
}

impl StepStatus {
    pub fn parse(s: &str) -> Option<StepStatus> {
        match s {
            "success" => Some(StepStatus::Success),
            "error" => Some(StepStatus::Error),
            "timeout" => Some(StepStatus::Timeout),
            "blocked" => Some(StepStatus::Blocked),
            _ => None,
        }
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub id: StepId,
    pub run_id: RunId,
    pub agent_id: String,
    pub kind: StepKind,
    pub provider: String,
    /// Model name for `llm_call`; the tool's name for `tool_call` (compat).
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: UsdNanos,
    pub latency_ms: u64,
    pub status: StepStatus,
    pub http_status: Option<u16>,
    pub error_message: Option<String>,
    pub request: Option<serde_json::Value>,
    pub response: Option<serde_json::Value>,
    pub created_at_ms: i64,
    /// What priced the step: a price table version, `config`, or `key:<provider key id>`;
    /// `None` when nothing did (an unpriced model, a tool step).
    pub price_version: Option<String>,
}

/// Why a call may not join the run it named (SPEC §3.2 rule 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The run is completed or stopped; `force_stopped` when an operator stopped it.
    Closed {
        status: RunStatus,
        force_stopped: bool,
    },
    /// The id belongs to another team's run.
    Taken,
}

/// Decides whether an agent of `team` may add a step to `run`.
pub fn check_join(run: &Run, team: &str) -> Result<(), JoinRefusal> {
    if run.team != team {
        return Err(JoinRefusal::Taken);
    }
    match run.status {
        RunStatus::Running => Ok(()),
        status => Err(JoinRefusal::Closed {
            status,
            force_stopped: run.ended_reason.as_deref() == Some(FORCE_STOPPED),
        }),
    }
}

/// `ended_reason` of a run an operator stopped through the admin API.
pub const FORCE_STOPPED: &str = "force_stopped";
/// `ended_reason` of a run the sweeper completed.
pub const IDLE_TIMEOUT: &str = "idle_timeout";

/// The team key of an agent: its team, or a team of one.
pub fn team_key(agent_id: &str, team: Option<&str>) -> String {
    match team {
        Some(team) if !team.is_empty() => format!("team:{team}"),
        _ => format!("agent:{agent_id}"),
    }
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 rendering of a millisecond timestamp, for JSON bodies.
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(team: &str, status: RunStatus, reason: Option<&str>) -> Run {
        Run {
            id: RunId("r".into()),
            agent_id: "a".into(),
            team: team.into(),
            policy_id: None,
            policy_version: None,
            status,
            auto: false,
            spend: UsdNanos::ZERO,
            input_tokens: 0,
            output_tokens: 0,
            steps_count: 0,
            started_at_ms: 0,
            last_activity_ms: 0,
            idle_timeout_ms: None,
            ended_at_ms: None,
            ended_reason: reason.map(str::to_owned),
            metadata: serde_json::Value::Null,
            budget_limit: None,
        }
    }

    #[test]
    fn join_rules_follow_the_spec() {
        let check = |r: &Run, team: &str| check_join(r, team);
        assert_eq!(
            check(&run("team:x", RunStatus::Running, None), "team:x"),
            Ok(())
        );
        assert_eq!(
            check(&run("team:x", RunStatus::Running, None), "team:y"),
            Err(JoinRefusal::Taken)
        );
        assert_eq!(
            check(
                &run("team:x", RunStatus::Completed, Some("agent_signaled")),
                "team:x"
            ),
            Err(JoinRefusal::Closed {
                status: RunStatus::Completed,
                force_stopped: false
            })
        );
        assert_eq!(
            check(
                &run("team:x", RunStatus::Stopped, Some(FORCE_STOPPED)),
                "team:x"
            ),
            Err(JoinRefusal::Closed {
                status: RunStatus::Stopped,
                force_stopped: true
            })
        );
        // A foreign team learns nothing about the run's state, only that the id is taken.
        assert_eq!(
            check(&run("team:x", RunStatus::Stopped, None), "team:y"),
            Err(JoinRefusal::Taken)
        );
    }

    #[test]
    fn agent_chosen_ids_are_bounded() {
        assert!(RunId::parse("run_42").is_some());
        assert!(RunId::parse("").is_none());
        assert!(RunId::parse("a/b").is_none());
        assert!(RunId::parse(&"x".repeat(201)).is_none());
        assert_eq!(team_key("a1", None), "agent:a1");
        assert_eq!(team_key("a1", Some("ops")), "team:ops");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
