//! The gate steps of the pipeline (SPEC §6). Before forwarding, a call meets its run's gates: the
//! retry of a reviewed request is matched by its fingerprint (pending → 202 again, rejected or
//! expired → 403, approved → consumed once, then the held answer or the forward), and any other
//! call of a paused run waits behind the open gate. After admission, a request that declares a
//! `require_approval` tool opens a gate instead of being forwarded. After the answer, a proposed
//! tool call that a `gates` rule matches opens a gate holding the answer, which was charged.
//!
//! Only runs whose pinned policy has approval rules get here, so ungated runs pay nothing.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::live::LiveRun;
use super::{ProxyReply, ReplyBody};
use crate::api::error::{ApiError, AwaitingApproval, BlockCode};
use crate::app::Gateway;
use crate::audit::AuditEvent;
use crate::gate::{self, Gate, GateId, GateRule, GateStatus, HeldAnswer, Trigger, Verdict};
use crate::notify::GateEvent;
use crate::policy::PolicyVersion;
use crate::run;
use crate::store::Agent;

/// What the run's gates let a call do before it is forwarded.
pub enum Pass {
    /// Nothing concerns this call: govern it as usual.
    Fresh,
    /// An approval for exactly this request was just used: forward without asking again for
    /// what was approved (`declared`: its `require_approval` tools; a budget approval waives no
    /// tool rule).
    Approved { declared: bool },
    /// An approval for exactly this request was just used, and its answer was held: return it.
    Held(ProxyReply),
}

/// The identity a new gate needs.
pub struct Asker<'a> {
    pub run: &'a LiveRun,
    pub policy: &'a PolicyVersion,
    pub agent: &'a Agent,
    pub fingerprint: &'a str,
}

/// Step 2b: the run's gates against this call.
pub async fn before_forward(gw: &Gateway, asker: &Asker<'_>) -> Result<Pass, ApiError> {
    let now = run::now_ms();
    let mut gates = gw.stores.gates.run_gates(asker.run.id.as_str()).await?;
    if gates.iter().any(|g| g.is_overdue(now)) {
        expire_due(gw, now).await?;
        gates = gw.stores.gates.run_gates(asker.run.id.as_str()).await?;
    }
    match gate::verdict(&gates, asker.fingerprint, now) {
        Verdict::Proceed => Ok(Pass::Fresh),
        Verdict::Waiting(open) => Err(awaiting(asker.run, &open)),
        Verdict::Rejected(gate) => Err(decided(asker, gate, BlockCode::ApprovalRejected)),
        Verdict::Expired(gate) => Err(decided(asker, gate, BlockCode::ApprovalExpired)),
        Verdict::Approved(group) => {
            let ids: Vec<GateId> = group.iter().map(|g| g.id.clone()).collect();
            let event = AuditEvent {
                kind: "approval.consumed",
                actor: format!("agent:{}", asker.agent.id),
                data: json!({"gate_ids": ids, "fingerprint": asker.fingerprint}),
                at_ms: now,
            };
            let won = gw
                .stores
                .gates
                .consume_gates(asker.run.id.as_str(), &ids, event, now)
                .await?;
            if !won {
                // A concurrent retry used this approval first: this one needs its own.
                return Err(ask_again(gw, asker, &group).await);
            }
            Ok(match group.iter().find_map(|g| g.held.as_ref()) {
                Some(held) => Pass::Held(held_reply(asker.run, held)),
                None => Pass::Approved {
                    declared: group.iter().any(|g| g.trigger == Trigger::DeclaredTool),
                },
            })
        }
        Verdict::Spent(group) => Err(ask_again(gw, asker, &group).await),
    }
}

/// Records every pending gate past its time as expired (with its audit event), and counts them.
pub async fn expire_due(gw: &Gateway, now_ms: i64) -> Result<(), crate::store::StoreError> {
    for gate in gw.stores.gates.expire_gates(now_ms).await? {
        gw.metrics.record_gates(gate.trigger.as_str(), "expired", 1);
    }
    Ok(())
}

/// Step 3b: the request declares tools listed in `require_approval` → one gate per tool, 202.
pub async fn declared_tools(
    gw: &Gateway,
    asker: &Asker<'_>,
    declared: &[String],
) -> Result<(), ApiError> {
    let required = asker
        .policy
        .document
        .require_approval
        .as_deref()
        .unwrap_or_default();
    let mut gated: Vec<&String> = declared.iter().filter(|t| required.contains(t)).collect();
    gated.sort_unstable();
    gated.dedup();
    if gated.is_empty() {
        return Ok(());
    }
    let now = run::now_ms();
    let gates = gated
        .into_iter()
        .map(|tool| {
            new_gate(
                asker,
                Trigger::DeclaredTool,
                "require_approval",
                tool,
                Value::Null,
                None,
                gate::DEFAULT_EXPIRES_IN_S,
                None,
                now,
            )
        })
        .collect();
    Err(open(gw, asker, gates, now).await)
}

/// Does a `gates` rule watch a tool this request declares? A streamed answer could then propose
/// it in bytes already sent, so such a stream is held for review ([`review_stream`]).
pub fn watches_stream(asker: &Asker<'_>, declared: &[String]) -> bool {
    let rules = asker.policy.document.gates.as_deref().unwrap_or_default();
    declared
        .iter()
        .any(|tool| rules.iter().any(|rule| &rule.tool == tool))
}

/// Step 6b for a stream: the relay runs to its end into a buffer (settling the step as usual),
/// then the proposals it carried decide: a matching one holds the whole stream behind a gate
/// (202, replayed to the approved retry); otherwise the buffer goes to the client as the stream.
pub async fn review_stream(
    gw: &Gateway,
    asker: &Asker<'_>,
    dialect: rungate_wire::Dialect,
    status: StatusCode,
    headers: HeaderMap,
    mut stream: super::ClientStream,
    step_id: String,
) -> Result<ProxyReply, ApiError> {
    use tokio_stream::StreamExt as _;
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
    }
    let calls = rungate_wire::streamed_calls(dialect, &body);
    let held = HeldAnswer {
        status: status.as_u16(),
        content_type: "text/event-stream".to_owned(),
        body,
        step_id,
    };
    let now = run::now_ms();
    let gates = proposed_actions(asker, &calls, &held, now);
    if !gates.is_empty() {
        return Err(open(gw, asker, gates, now).await);
    }
    Ok(ProxyReply {
        status,
        headers,
        body: ReplyBody::Full(Bytes::from(held.body)),
    })
}

/// Step 6b: the gates to open for the tool calls a JSON answer proposes that a `gates` rule
/// matches, each holding the answer; empty when no rule matches. The caller settles the step
/// (the provider billed it) before opening them with [`open`].
pub fn proposed_actions(
    asker: &Asker<'_>,
    calls: &[rungate_wire::ProposedCall],
    held: &HeldAnswer,
    now: i64,
) -> Vec<Gate> {
    let rules = asker.policy.document.gates.as_deref().unwrap_or_default();
    if rules.is_empty() || calls.is_empty() {
        return Vec::new();
    }
    let (run_vars, agent_vars) = (run_vars(asker.run), agent_vars(asker.agent));
    let mut gates = Vec::new();
    for call in calls {
        for rule in gate::matching_rules(rules, &call.name, &call.arguments, &run_vars, &agent_vars)
        {
            gates.push(rule_gate(
                asker,
                Trigger::ProposedAction,
                rule,
                call,
                Some(held.clone()),
                now,
            ));
        }
    }
    gates
}

/// A reported tool step that a rule watches (`require_approval` or a matching `gates` rule):
/// 202 until approved. `Ok(())` lets the step be recorded.
pub async fn reported_tool(
    gw: &Gateway,
    asker: &Asker<'_>,
    call: &rungate_wire::ProposedCall,
) -> Result<(), ApiError> {
    match before_forward(gw, asker).await? {
        Pass::Approved { .. } | Pass::Held(_) => return Ok(()),
        Pass::Fresh => {}
    }
    let doc = &asker.policy.document;
    let now = run::now_ms();
    let mut gates = Vec::new();
    if doc
        .require_approval
        .as_deref()
        .unwrap_or_default()
        .contains(&call.name)
    {
        gates.push(new_gate(
            asker,
            Trigger::ReportedTool,
            "require_approval",
            &call.name,
            call.arguments.clone(),
            None,
            gate::DEFAULT_EXPIRES_IN_S,
            None,
            now,
        ));
    }
    let rules = doc.gates.as_deref().unwrap_or_default();
    let (run_vars, agent_vars) = (run_vars(asker.run), agent_vars(asker.agent));
    for rule in gate::matching_rules(rules, &call.name, &call.arguments, &run_vars, &agent_vars) {
        gates.push(rule_gate(
            asker,
            Trigger::ReportedTool,
            rule,
            call,
            None,
            now,
        ));
    }
    if gates.is_empty() {
        return Ok(());
    }
    Err(open(gw, asker, gates, now).await)
}

/// `budget.on_exceed: approval`: a call the USD cap refuses pauses the run behind a gate asking
/// for a higher cap (202) instead of failing with 402. `None` for any other refusal.
pub async fn budget_exceeded(
    gw: &Gateway,
    asker: &Asker<'_>,
    refusal: &ApiError,
    model: &str,
) -> Option<ApiError> {
    let ApiError::Blocked(block) = refusal else {
        return None;
    };
    if block.code != BlockCode::BudgetExceeded || !asker.policy.document.budget_needs_approval() {
        return None;
    }
    let usd = |field: &str| {
        block.details[field]
            .as_f64()
            .and_then(crate::money::UsdNanos::from_usd)
            .unwrap_or(crate::money::UsdNanos::ZERO)
    };
    let needed = usd("cost_usd")
        .saturating_add(usd("reserved_usd"))
        .saturating_add(usd("estimated_cost_usd"));
    let args = json!({
        "model": model, "spend_usd": block.details["cost_usd"], "limit_usd": block.details["hard_limit_usd"],
        "reserved_usd": block.details["reserved_usd"], "estimated_cost_usd": block.details["estimated_cost_usd"],
        "needed_limit_usd": needed.as_usd(),
    });
    let now = run::now_ms();
    let gate = new_gate(
        asker,
        Trigger::Budget,
        "budget.on_exceed",
        "budget",
        args,
        None,
        gate::DEFAULT_EXPIRES_IN_S,
        None,
        now,
    );
    Some(open(gw, asker, vec![gate], now).await)
}

fn rule_gate(
    asker: &Asker<'_>,
    trigger: Trigger,
    rule: &GateRule,
    call: &rungate_wire::ProposedCall,
    held: Option<HeldAnswer>,
    now: i64,
) -> Gate {
    new_gate(
        asker,
        trigger,
        &rule.id,
        &call.name,
        call.arguments.clone(),
        rule.approver_channel.clone(),
        rule.expires_in_s.unwrap_or(gate::DEFAULT_EXPIRES_IN_S),
        held,
        now,
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "a gate's fields, named at the call sites"
)]
fn new_gate(
    asker: &Asker<'_>,
    trigger: Trigger,
    rule: &str,
    tool: &str,
    args: Value,
    approver_channel: Option<String>,
    expires_in_s: u64,
    held: Option<HeldAnswer>,
    now: i64,
) -> Gate {
    let ttl_ms = i64::try_from(expires_in_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    Gate {
        id: GateId::generate(),
        run_id: asker.run.id.to_string(),
        agent_id: asker.agent.id.clone(),
        trigger,
        rule: rule.to_owned(),
        tool: tool.to_owned(),
        args,
        approver_channel,
        fingerprint: asker.fingerprint.to_owned(),
        status: GateStatus::Pending,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl_ms),
        decided_at_ms: None,
        decided_by: None,
        reason: None,
        consumed_at_ms: None,
        held,
    }
}

/// Opens `gates` with their `approval.pending` events and renders the 202 for what is open for
/// this request (the new gates, or those a concurrent identical call opened first) — or the
/// store's failure, which the caller returns the same way.
pub async fn open(gw: &Gateway, asker: &Asker<'_>, gates: Vec<Gate>, now: i64) -> ApiError {
    let events = gates
        .iter()
        .map(|g| AuditEvent {
            kind: "approval.pending",
            actor: format!("agent:{}", asker.agent.id),
            data: json!({
                "gate_id": g.id, "trigger": g.trigger.as_str(), "rule": g.rule, "tool": g.tool,
                "args": g.args, "approver_channel": g.approver_channel,
                "expires_at": run::rfc3339(g.expires_at_ms), "held_answer": g.held.is_some(),
            }),
            at_ms: now,
        })
        .collect();
    let first = gates.first().map(|g| g.id.clone());
    let opened = match gw.stores.gates.open_gates(gates, events, now).await {
        Ok(opened) => opened,
        Err(err) => return err.into(),
    };
    // Gates a concurrent identical call opened first were announced by that call.
    if opened.first().map(|g| &g.id) == first.as_ref() {
        gw.notifier.gates(GateEvent::Pending, &opened);
        for gate in &opened {
            gw.metrics.record_gates(gate.trigger.as_str(), "pending", 1);
        }
    }
    let refs: Vec<&Gate> = opened.iter().collect();
    awaiting(asker.run, &refs)
}

/// The same request again after its approval was used: a new request for approval with the
/// same trigger, tool, arguments and held answer.
async fn ask_again(gw: &Gateway, asker: &Asker<'_>, spent: &[&Gate]) -> ApiError {
    let now = run::now_ms();
    let gates = spent
        .iter()
        .map(|old| {
            let ttl_s = u64::try_from((old.expires_at_ms - old.created_at_ms) / 1000)
                .unwrap_or(gate::DEFAULT_EXPIRES_IN_S)
                .max(1);
            new_gate(
                asker,
                old.trigger,
                &old.rule,
                &old.tool,
                old.args.clone(),
                old.approver_channel.clone(),
                ttl_s,
                old.held.clone(),
                now,
            )
        })
        .collect();
    open(gw, asker, gates, now).await
}

/// The 202 body of SPEC §5/§6 for the open gates of a run.
fn awaiting(run: &LiveRun, gates: &[&Gate]) -> ApiError {
    let tools: Vec<&str> = gates.iter().map(|g| g.tool.as_str()).collect();
    let first = gates.first();
    let context = first.map_or(json!({"run_id": run.id}), |g| {
        json!({
            "gate_id": g.id, "run_id": run.id, "rule": g.rule, "trigger": g.trigger.as_str(),
            "proposed_action": {"tool": g.tool, "args": g.args},
            "approver_channel": g.approver_channel, "expires_at": run::rfc3339(g.expires_at_ms),
        })
    });
    ApiError::AwaitingApproval(Box::new(AwaitingApproval {
        run_id: run.id.to_string(),
        message: format!(
            "Run {} is paused: {} awaiting approval",
            run.id,
            tools.join(", ")
        ),
        approval_requests: Value::Array(
            gates
                .iter()
                .map(|g| json!({"id": g.id, "tool": g.tool}))
                .collect(),
        ),
        context,
        retry_after_s: gate::RETRY_AFTER_S,
    }))
}

/// 403 `approval_rejected` / `approval_expired` for the retry of a decided request.
fn decided(asker: &Asker<'_>, gate: &Gate, code: BlockCode) -> ApiError {
    let (message, recover) = match code {
        BlockCode::ApprovalRejected => (
            match &gate.reason {
                Some(reason) => format!("Approval for {} was rejected: {reason}", gate.tool),
                None => format!("Approval for {} was rejected", gate.tool),
            },
            "change the request, or ask the approver why",
        ),
        _ => (
            format!("Approval for {} expired before anyone decided", gate.tool),
            "send the request again to ask for a new approval after changing it, or start a new run",
        ),
    };
    super::decide::block(
        &asker.run.id,
        asker.policy,
        code,
        message,
        json!({"gate_id": gate.id, "tool": gate.tool, "reason": gate.reason, "decided_by": gate.decided_by}),
        json!({"rule": gate.rule, "gate_id": gate.id, "tool": gate.tool, "reason": gate.reason,
               "how_to_recover": recover}),
    )
}

/// The held answer, returned to the approved retry with the run's headers.
fn held_reply(run: &LiveRun, held: &HeldAnswer) -> ProxyReply {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", &held.content_type);
    set("x-rungate-run-id", run.id.as_str());
    set("x-rungate-step-id", &held.step_id);
    set("x-rungate-cost-usd", "0.000000");
    set("x-rungate-failover", "0");
    set(
        "x-rungate-warning",
        "approved answer held since the gated call; it was charged then, not now",
    );
    ProxyReply {
        status: StatusCode::from_u16(held.status).unwrap_or(StatusCode::OK),
        headers,
        body: ReplyBody::Full(Bytes::from(held.body.clone())),
    }
}

fn run_vars(run: &LiveRun) -> Value {
    json!({"id": run.id, "spend_usd": run.spend().as_usd(), "tokens": run.tokens(),
           "steps": run.books.steps()})
}

fn agent_vars(agent: &Agent) -> Value {
    json!({"id": agent.id, "name": agent.name, "team": agent.team})
}

/// The policy of a run whose rules may open gates.
pub fn gated_policy(run: &LiveRun) -> Option<&Arc<PolicyVersion>> {
    run.policy
        .as_ref()
        .filter(|p| p.document.has_approval_rules())
}
