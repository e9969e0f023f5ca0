//! The response-side obligation of a call: once the outcome is known (a full answer, a stream
//! that ended or died, an upstream failure), record the step, its ledger entry and its audit
//! event in one transaction, and fold the committed totals back into the live run.

use std::sync::Arc;
use std::time::Instant;

use rungate_wire::{Dialect, Usage};
use serde_json::json;

use super::live::LiveRun;
use crate::app::Gateway;
use crate::audit::AuditEvent;
use crate::budget::{self, Hold, LedgerEntry, LedgerKind};
use crate::money::UsdNanos;
use crate::providers::Provider;
use crate::providers::pricing::Priced;
use crate::run::{self, RunTotals, Step, StepId, StepKind, StepStatus};
use crate::store::{Crossing, StepRecord, StoreResult};

/// A model call in flight: everything needed to record it, fixed before forwarding.
#[must_use = "a step in flight must be settled"]
pub struct StepDraft {
    pub id: StepId,
    pub run: Arc<LiveRun>,
    pub agent_id: String,
    pub provider: Provider,
    pub model: String,
    /// The attempt's price and what set it (recorded as the step's `price_version`).
    pub price: Option<Priced>,
    /// The projected cost held for this call; settling releases it.
    pub hold: Hold,
    pub started: Instant,
    pub created_at_ms: i64,
    /// 1 for the first attempt; retries and failovers count up.
    pub attempt: u32,
    /// The dialect the caller speaks (a stream's error event is written in it).
    pub client: Dialect,
    /// The call's estimated input tokens: what an attempt that timed out is charged, since the
    /// provider may have processed (and will bill) the prompt without answering in time.
    pub input_estimate: u64,
}

/// How the call ended.
pub struct Outcome {
    pub usage: Usage,
    pub status: StepStatus,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

/// What was recorded: the step's cost and warning, and the run's totals as committed.
pub struct Settled {
    pub cost: UsdNanos,
    pub usage: Usage,
    pub run: RunTotals,
    pub unpriced: bool,
}

impl StepDraft {
    /// The settlement, and — when the run has caps, so a hold mattered — the reservation it
    /// replaces and its release, all keyed by the step so a replay adds nothing.
    fn ledger_entries(&self, cost: UsdNanos, now: i64) -> Vec<LedgerEntry> {
        let entry = |kind, amount| LedgerEntry {
            kind,
            step_id: self.id.0.clone(),
            amount,
            created_at_ms: now,
        };
        let caps = self.run.caps();
        let capped = caps.usd.is_some() || caps.tokens.is_some();
        if !capped {
            return vec![entry(LedgerKind::Settlement, cost)];
        }
        vec![
            entry(LedgerKind::Reservation, self.hold.amount),
            entry(LedgerKind::Settlement, cost),
            entry(LedgerKind::Release, self.hold.amount),
        ]
    }

    /// The step of this attempt, its ledger entries and audit events, as one store record.
    /// `with_hold`: the entries that release the call's hold (only the final attempt's).
    fn record(
        &self,
        outcome: &Outcome,
        cost: UsdNanos,
        with_hold: bool,
        extra: Vec<AuditEvent>,
    ) -> StepRecord {
        let latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = run::now_ms();
        let step = Step {
            id: self.id.clone(),
            run_id: self.run.id.clone(),
            agent_id: self.agent_id.clone(),
            kind: StepKind::LlmCall,
            provider: self.provider.name().to_owned(),
            model: self.model.clone(),
            input_tokens: outcome.usage.input_tokens,
            output_tokens: outcome.usage.output_tokens,
            cost,
            latency_ms,
            status: outcome.status,
            http_status: outcome.http_status,
            error_message: outcome.error.clone(),
            request: None,
            response: None,
            created_at_ms: self.created_at_ms,
            price_version: self.price.as_ref().map(|p| p.version.to_string()),
        };
        let ledger = match with_hold {
            true => self.ledger_entries(cost, now),
            false => vec![LedgerEntry {
                kind: LedgerKind::Settlement,
                step_id: self.id.0.clone(),
                amount: cost,
                created_at_ms: now,
            }],
        };
        let mut audit = vec![AuditEvent {
            kind: "step.recorded",
            actor: format!("agent:{}", self.agent_id),
            data: json!({
                "step_id": self.id, "type": "llm_call", "provider": step.provider, "model": step.model,
                "status": step.status, "http_status": step.http_status, "cost_nanos": cost.0,
                "tokens": {"input": step.input_tokens, "output": step.output_tokens},
                "latency_ms": latency_ms, "error": outcome.error, "attempt": self.attempt,
                "price_version": step.price_version,
            }),
            at_ms: now,
        }];
        audit.extend(extra);
        let alert = self.run.alert_threshold.map(|threshold| Crossing {
            threshold,
            event: AuditEvent {
                kind: "budget.alert",
                actor: "system:budget".into(),
                data: json!({
                    "threshold_nanos": threshold.0,
                    "limit_nanos": self.run.hard_limit().map(|l| l.0),
                }),
                at_ms: now,
            },
        });
        StepRecord {
            step,
            ledger,
            audit,
            hold_id: match with_hold {
                true => self.hold.shared_id().map(str::to_owned),
                false => None,
            },
            alert,
        }
    }

    /// The usage an attempt that got no answer in time is charged for.
    pub fn timed_out_usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_estimate,
            ..Usage::default()
        }
    }

    fn cost_of(&self, usage: &Usage) -> UsdNanos {
        self.price
            .as_ref()
            .map_or(UsdNanos::ZERO, |p| budget::cost_of(usage, &p.price))
    }

    /// Records an attempt that failed and is followed by another (a retry or a failover): its
    /// own step, settled without touching the call's hold, which moves on to the next attempt.
    pub async fn record_failed_attempt(
        &self,
        gw: &Gateway,
        outcome: Outcome,
        events: Vec<AuditEvent>,
    ) -> StoreResult<()> {
        let cost = self.cost_of(&outcome.usage);
        let record = self.record(&outcome, cost, false, events);
        let latency_ms = record.step.latency_ms;
        let committed = gw.stores.runs.record_step(&record).await?;
        self.run.refresh(&committed);
        if let Some(hour) = gw.runs.agent_hour(&self.agent_id) {
            hour.record(run::now_ms(), cost);
        }
        gw.metrics
            .record_step(self.provider.name(), outcome.status, cost, latency_ms);
        gw.metrics.record_spend(&self.agent_id, &self.model, cost);
        Ok(())
    }

    /// Points the draft at the next attempt: a new step on `provider` / `model`.
    pub fn retarget(&mut self, provider: Provider, model: &str, price: Option<Priced>) {
        self.id = StepId::generate();
        self.provider = provider;
        model.clone_into(&mut self.model);
        self.price = price;
        self.started = Instant::now();
        self.created_at_ms = run::now_ms();
        self.attempt += 1;
    }

    pub async fn settle(self, gw: &Gateway, outcome: Outcome) -> StoreResult<Settled> {
        let unpriced = self.price.is_none();
        let cost = self.cost_of(&outcome.usage);
        let record = self.record(&outcome, cost, true, Vec::new());
        let latency_ms = record.step.latency_ms;
        let now = run::now_ms();
        let committed = gw.stores.runs.record_step(&record).await?;
        self.hold.settle(
            committed.spend,
            committed.input_tokens + committed.output_tokens,
            committed.steps_count,
        );
        // The committed totals include every gateway's steps (shared books) or every
        // concurrent one (here): adopt them so the live view never lags what is settled.
        self.run.refresh(&committed);
        if let Some(hour) = gw.runs.agent_hour(&self.agent_id) {
            hour.record(now, cost);
        }
        gw.metrics
            .record_step(self.provider.name(), outcome.status, cost, latency_ms);
        gw.metrics.record_spend(&self.agent_id, &self.model, cost);
        Ok(Settled {
            cost,
            usage: outcome.usage,
            run: committed,
            unpriced,
        })
    }
}
