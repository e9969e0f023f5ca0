//! Step 2 of the pipeline: which run does this call belong to (SPEC §3.2)? Explicit id from
//! the header or body, else the agent's current auto-run while it is inside its idle window,
//! else a new run. New runs pin their policy version now; later policy edits do not reach them.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::json;

use super::live::LiveRun;
use crate::api::error::{ApiError, Block, BlockCode};
use crate::app::Gateway;
use crate::audit::AuditEvent;
use crate::money::UsdNanos;
use crate::policy::PolicyVersion;
use crate::run::{self, JoinRefusal, Run, RunId, RunStatus};
use crate::store::{Agent, StoreError};

pub const RUN_ID_HEADER: &str = "x-rungate-run-id";
pub const NEW_RUN_HEADER: &str = "x-rungate-new-run";
pub const POLICY_HEADER: &str = "x-rungate-policy";

/// The run a call joined, and what the caller should be told about it.
pub struct Joined {
    pub run: Arc<LiveRun>,
    pub warning: Option<String>,
}

/// Resolves (or creates) the run for a call by `agent`.
pub async fn resolve_run(
    gw: &Gateway,
    agent: &Agent,
    headers: &HeaderMap,
    body_run_id: Option<&str>,
) -> Result<Joined, ApiError> {
    let team = run::team_key(&agent.id, agent.team.as_deref());
    let explicit = headers
        .get(RUN_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(body_run_id);
    let policy_header = headers.get(POLICY_HEADER).and_then(|v| v.to_str().ok());
    if let Some(raw) = explicit {
        let id = RunId::parse(raw).ok_or_else(|| {
            ApiError::invalid(
                "x-rungate-run-id must be 1-200 printable characters without '/', '?' or '#'",
            )
        })?;
        return join_or_create(gw, agent, &team, id, policy_header, false).await;
    }
    let wants_new = headers
        .get(NEW_RUN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let now = run::now_ms();
    if !wants_new {
        if let Some(current) = gw.runs.current_auto(&agent.id) {
            if !current.is_closed() && !current.idle_since(now) {
                let warning = policy_header.map(|_| ignored_policy_warning());
                return Ok(Joined {
                    run: current,
                    warning,
                });
            }
        }
    }
    let joined = join_or_create(gw, agent, &team, RunId::generate(), policy_header, true).await?;
    gw.runs.set_auto(&agent.id, joined.run.id.clone());
    Ok(joined)
}

fn ignored_policy_warning() -> String {
    "x-rungate-policy ignored: the run already exists and keeps its pinned policy".to_owned()
}

async fn join_or_create(
    gw: &Gateway,
    agent: &Agent,
    team: &str,
    id: RunId,
    policy_header: Option<&str>,
    auto: bool,
) -> Result<Joined, ApiError> {
    if let Some(live) = gw.runs.get(&id) {
        if live.team != team {
            return Err(refusal(&id, JoinRefusal::Taken));
        }
        let warning = policy_header.map(|_| ignored_policy_warning());
        return Ok(Joined { run: live, warning });
    }
    match gw.stores.runs.get_run(&id).await {
        Ok(stored) => return adopt(gw, stored, team, policy_header).await,
        Err(StoreError::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    let policy = pin_policy(gw, agent, policy_header).await?;
    let now = run::now_ms();
    let new_run = Run {
        id: id.clone(),
        agent_id: agent.id.clone(),
        team: team.to_owned(),
        policy_id: policy.as_ref().map(|p| p.policy_id.clone()),
        policy_version: policy.as_ref().map(|p| p.version),
        status: RunStatus::Running,
        auto,
        spend: UsdNanos::ZERO,
        input_tokens: 0,
        output_tokens: 0,
        steps_count: 0,
        started_at_ms: now,
        last_activity_ms: now,
        idle_timeout_ms: policy
            .as_ref()
            .and_then(|p| p.document.idle_timeout_s)
            .map(|s| (s as i64).saturating_mul(1000)),
        ended_at_ms: None,
        ended_reason: None,
        metadata: json!({}),
        budget_limit: None,
    };
    let event = AuditEvent {
        kind: "run.started",
        actor: format!("agent:{}", agent.id),
        data: json!({"agent_id": agent.id, "team": team, "auto": auto, "policy_id": new_run.policy_id, "policy_version": new_run.policy_version}),
        at_ms: now,
    };
    match gw.stores.runs.create_run(&new_run, event).await {
        Ok(()) => {}
        // Another call created the same id between our read and our insert: join it.
        Err(StoreError::Conflict(_)) => {
            let stored = gw.stores.runs.get_run(&id).await?;
            return adopt(gw, stored, team, policy_header).await;
        }
        Err(err) => return Err(err.into()),
    }
    let live = Arc::new(LiveRun::new(&new_run, policy, default_idle_ms(gw)));
    Ok(Joined {
        run: gw.runs.insert(live),
        warning: None,
    })
}

/// Joins a run found in the store (after a restart, or created by a concurrent call).
async fn adopt(
    gw: &Gateway,
    stored: Run,
    team: &str,
    policy_header: Option<&str>,
) -> Result<Joined, ApiError> {
    run::check_join(&stored, team).map_err(|refused| refusal(&stored.id, refused))?;
    let policy = match (&stored.policy_id, stored.policy_version) {
        (Some(id), Some(version)) => Some(gw.directory.policy(id, version).await?),
        _ => None,
    };
    let live = Arc::new(LiveRun::new(&stored, policy, default_idle_ms(gw)));
    let warning = policy_header.map(|_| ignored_policy_warning());
    Ok(Joined {
        run: gw.runs.insert(live),
        warning,
    })
}

fn default_idle_ms(gw: &Gateway) -> i64 {
    i64::try_from(gw.config.default_idle_timeout.as_millis()).unwrap_or(i64::MAX)
}

/// The policy a new run pins: the `x-rungate-policy` header (`name` or `name/vN`), else the
/// agent's policy at its latest version, else none.
async fn pin_policy(
    gw: &Gateway,
    agent: &Agent,
    header: Option<&str>,
) -> Result<Option<Arc<PolicyVersion>>, ApiError> {
    let stores = &gw.stores.policies;
    if let Some(spec) = header {
        let unknown = || ApiError::invalid(format!("unknown policy {spec:?} in x-rungate-policy"));
        let (name, version) = match spec.rsplit_once("/v") {
            Some((name, v)) if v.parse::<i64>().is_ok() => (name, v.parse::<i64>().ok()),
            _ => (spec, None),
        };
        let latest = stores.policy_by_name(name).await.map_err(|e| match e {
            StoreError::NotFound => unknown(),
            other => other.into(),
        })?;
        let version = version.unwrap_or(latest.version);
        return match gw.directory.policy(&latest.policy_id, version).await {
            Ok(policy) => Ok(Some(policy)),
            Err(StoreError::NotFound) => Err(unknown()),
            Err(err) => Err(err.into()),
        };
    }
    let Some(policy_id) = &agent.policy_id else {
        return Ok(None);
    };
    match stores.get_policy(policy_id).await {
        Ok(latest) => Ok(Some(gw.directory.policy(policy_id, latest.version).await?)),
        Err(StoreError::NotFound) => {
            tracing::warn!(agent_id = %agent.id, policy_id, "agent's policy no longer exists; run starts without a policy");
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// The 409/403 a call gets when it may not join the run it named.
pub fn refusal(id: &RunId, refused: JoinRefusal) -> ApiError {
    let (code, message, recover) = match refused {
        JoinRefusal::Taken => (
            BlockCode::RunIdTaken,
            format!("Run id {id} belongs to another team"),
            "choose a different run id",
        ),
        JoinRefusal::Closed {
            force_stopped: true,
            ..
        } => (
            BlockCode::RunForceStopped,
            format!("Run {id} was stopped by an operator"),
            "start a new run with x-rungate-new-run: true",
        ),
        JoinRefusal::Closed { status, .. } => (
            BlockCode::RunClosed,
            format!("Run {id} is {} and accepts no more calls", status.as_str()),
            "start a new run with x-rungate-new-run: true or a new x-rungate-run-id",
        ),
    };
    ApiError::blocked(Block {
        code,
        message,
        run_id: Some(id.to_string()),
        details: json!({}),
        context: json!({"run_id": id, "rule": code.as_str(), "how_to_recover": recover}),
        retry_after_s: None,
    })
}
