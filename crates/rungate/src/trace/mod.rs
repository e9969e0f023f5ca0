//! A run as a trace (SPEC §8): one root span `run.init` and a child span per thing that
//! happened — `llm.<model>` per model call (refused ones included, marked `blocked`),
//! `tool.<name>` per reported tool step, `gate.<rule>` per approval request with who decided.
//! Attributes follow the OpenTelemetry GenAI conventions (`gen_ai.conversation.id` is the run id,
//! `gen_ai.request.model`, `gen_ai.usage.*`) plus the cost as `gen_ai.usage.cost.amount` /
//! `.currency`. Built from what the store keeps — the run, its steps, its audit chain and its
//! gates — so a trace is a reconstruction, never a second source of truth.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::audit::ChainedEvent;
use crate::gate::{Gate, GateStatus};
use crate::run::RunId;
use crate::run::{Run, Step, StepKind, StepStatus};
use crate::store::{Page, StoreResult, Stores};

/// One span, with times in milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `ok`, `error` or `blocked`.
    pub status: &'static str,
    pub attributes: Map<String, Value>,
    /// The audit `seq` of the event that recorded it: orders spans that start in the same ms.
    #[serde(skip)]
    seq: i64,
}

/// The trace id of a run: the first 16 bytes of SHA-256 of its id, hex (W3C trace-id size).
pub fn trace_id(run_id: &str) -> String {
    hex::encode(&Sha256::digest(run_id.as_bytes())[..16])
}

/// A span id derived from what the span stands for, so the same run always yields the same ids.
fn span_id(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Everything the store keeps about a run, as spans (`NotFound` for an unknown run).
pub async fn load(stores: &Stores, id: &RunId) -> StoreResult<Vec<Span>> {
    let run = stores.runs.get_run(id).await?;
    let mut steps = Vec::new();
    loop {
        let page = Page {
            limit: 1000,
            offset: u32::try_from(steps.len()).unwrap_or(u32::MAX),
        };
        let (more, total) = stores.runs.steps(id, page, true).await?;
        let done = more.is_empty() || (steps.len() + more.len()) as u64 >= total;
        steps.extend(more);
        if done {
            break;
        }
    }
    let events = stores.runs.audit_events(id).await?;
    let gates = stores.gates.run_gates(id.as_str()).await?;
    Ok(of_run(&run, &steps, &events, &gates))
}

/// The run's spans, root first, the rest by start time.
pub fn of_run(run: &Run, steps: &[Step], events: &[ChainedEvent], gates: &[Gate]) -> Vec<Span> {
    let trace = trace_id(&run.id.0);
    let root_id = span_id(&format!("{}:run", run.id.0));
    let end = run.ended_at_ms.unwrap_or(run.last_activity_ms);
    let mut root = Map::new();
    root.insert("gen_ai.conversation.id".into(), json!(run.id.0));
    root.insert("rungate.agent.id".into(), json!(run.agent_id));
    root.insert("rungate.run.status".into(), json!(run.status.as_str()));
    root.insert("rungate.policy.id".into(), json!(run.policy_id));
    root.insert("rungate.policy.version".into(), json!(run.policy_version));
    root.insert("rungate.run.ended_reason".into(), json!(run.ended_reason));
    cost(&mut root, run.spend.as_usd());
    root.insert("gen_ai.usage.input_tokens".into(), json!(run.input_tokens));
    root.insert(
        "gen_ai.usage.output_tokens".into(),
        json!(run.output_tokens),
    );
    // The audit event that recorded each step and gate, for a stable order within one millisecond.
    let recorded = |field: &str, id: &str| {
        events
            .iter()
            .find(|e| e.data[field] == id)
            .map_or(i64::MAX, |e| e.seq)
    };
    let child =
        |key: &str, seq: i64, name: String, start_ms: i64, end_ms: i64, status, attributes| Span {
            seq,
            trace_id: trace.clone(),
            span_id: span_id(&format!("{}:{key}", run.id.0)),
            parent_span_id: Some(root_id.clone()),
            name,
            start_ms,
            end_ms: end_ms.max(start_ms),
            status,
            attributes,
        };
    let mut spans = Vec::new();
    for step in steps {
        let mut a = Map::new();
        a.insert("gen_ai.conversation.id".into(), json!(run.id.0));
        a.insert("rungate.step.id".into(), json!(step.id.0));
        a.insert("rungate.agent.id".into(), json!(step.agent_id));
        cost(&mut a, step.cost.as_usd());
        if let Some(error) = &step.error_message {
            a.insert("error.message".into(), json!(error));
        }
        let name = match step.kind {
            StepKind::LlmCall => {
                a.insert("gen_ai.operation.name".into(), json!("chat"));
                a.insert("gen_ai.system".into(), json!(step.provider));
                a.insert("gen_ai.request.model".into(), json!(step.model));
                a.insert("gen_ai.usage.input_tokens".into(), json!(step.input_tokens));
                a.insert(
                    "gen_ai.usage.output_tokens".into(),
                    json!(step.output_tokens),
                );
                a.insert("http.response.status_code".into(), json!(step.http_status));
                format!("llm.{}", step.model)
            }
            StepKind::ToolCall => {
                a.insert("gen_ai.operation.name".into(), json!("execute_tool"));
                a.insert("gen_ai.tool.name".into(), json!(step.model));
                format!("tool.{}", step.model)
            }
        };
        let status = match step.status {
            StepStatus::Success => "ok",
            StepStatus::Blocked => "blocked",
            StepStatus::Error | StepStatus::Timeout => "error",
        };
        let latency = i64::try_from(step.latency_ms).unwrap_or(i64::MAX);
        spans.push(child(
            &step.id.0,
            recorded("step_id", &step.id.0),
            name,
            step.created_at_ms,
            step.created_at_ms.saturating_add(latency),
            status,
            a,
        ));
    }
    // Calls refused before anything was forwarded leave no step, only a `run.blocked` event.
    for event in events.iter().filter(|e| e.kind == "run.blocked") {
        let model = event.data["model"].as_str().unwrap_or("unknown");
        let mut a = Map::new();
        a.insert("gen_ai.conversation.id".into(), json!(run.id.0));
        a.insert("gen_ai.request.model".into(), json!(model));
        a.insert("rungate.block.code".into(), event.data["code"].clone());
        a.insert("rungate.block.rule".into(), event.data["rule"].clone());
        a.insert("rungate.actor".into(), json!(event.actor));
        cost(&mut a, 0.0);
        spans.push(child(
            &format!("audit:{}", event.seq),
            event.seq,
            format!("llm.{model}"),
            event.at_ms,
            event.at_ms,
            "blocked",
            a,
        ));
    }
    for gate in gates {
        let mut a = Map::new();
        a.insert("gen_ai.conversation.id".into(), json!(run.id.0));
        a.insert("rungate.gate.id".into(), json!(gate.id.0));
        a.insert("rungate.gate.trigger".into(), json!(gate.trigger.as_str()));
        a.insert("rungate.gate.status".into(), json!(gate.status.as_str()));
        a.insert("rungate.gate.tool".into(), json!(gate.tool));
        a.insert("rungate.gate.args".into(), gate.args.clone());
        a.insert("rungate.gate.decided_by".into(), json!(gate.decided_by));
        a.insert("rungate.gate.reason".into(), json!(gate.reason));
        a.insert(
            "rungate.gate.consumed".into(),
            json!(gate.consumed_at_ms.is_some()),
        );
        let status = match gate.status {
            GateStatus::Approved => "ok",
            GateStatus::Pending => "ok",
            GateStatus::Rejected | GateStatus::Expired => "blocked",
        };
        let end = gate.decided_at_ms.unwrap_or(gate.created_at_ms);
        spans.push(child(
            &gate.id.0,
            recorded("gate_id", &gate.id.0),
            format!("gate.{}", gate.rule),
            gate.created_at_ms,
            end,
            status,
            a,
        ));
    }
    spans.sort_by_key(|s| (s.start_ms, s.seq));
    let mut all = vec![Span {
        trace_id: trace.clone(),
        span_id: root_id,
        parent_span_id: None,
        name: "run.init".into(),
        start_ms: run.started_at_ms,
        end_ms: end.max(run.started_at_ms),
        status: "ok",
        attributes: root,
        seq: 0,
    }];
    all.extend(spans);
    all
}

fn cost(attributes: &mut Map<String, Value>, usd: f64) {
    attributes.insert("gen_ai.usage.cost.amount".into(), json!(usd));
    attributes.insert("gen_ai.usage.cost.currency".into(), json!("USD"));
}
