//! The run's money. Spend is never a free-floating counter: every change is a [`LedgerEntry`]
//! (keyed by step, so settling twice is a no-op), written in the same transaction as the step
//! and its audit event, and the run's spend is the sum of its settled entries. This module
//! decides amounts and remaining budget; it knows nothing of HTTP or SQL.

mod books;
mod hourly;

pub use books::{
    Admission, Books, CallEstimate, Caps, DEFAULT_OUTPUT_ESTIMATE, Enforcement, Hold, Refusal,
    Release, Snapshot, estimate_input_tokens, judge, projected_cost,
};
pub use hourly::HourlySpend;

use serde::Serialize;

use crate::money::UsdNanos;
use crate::providers::pricing::Price;
use rungate_wire::Usage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// The projected cost held while a model call was in flight.
    Reservation,
    /// The real cost of a model call, from the provider's usage.
    Settlement,
    /// The hold given back once the call settled.
    Release,
    /// A cost the agent reported with a tool step.
    ToolCost,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 4] = [
        LedgerKind::Reservation,
        LedgerKind::Settlement,
        LedgerKind::Release,
        LedgerKind::ToolCost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Reservation => "reservation",
            LedgerKind::Settlement => "settlement",
            LedgerKind::Release => "release",
            LedgerKind::ToolCost => "tool_cost",
        }
    }

    pub fn parse(s: &str) -> Option<LedgerKind> {
        match s {
            "reservation" => Some(LedgerKind::Reservation),
            "settlement" => Some(LedgerKind::Settlement),
            "release" => Some(LedgerKind::Release),
            "tool_cost" => Some(LedgerKind::ToolCost),
            _ => None,
        }
    }

    /// Whether entries of this kind are money spent (the run's spend is their sum); holds and
    /// releases are bookkeeping of what was promised, not spent.
    pub fn is_spend(self) -> bool {
        match self {
            LedgerKind::Settlement | LedgerKind::ToolCost => true,
            LedgerKind::Reservation | LedgerKind::Release => false,
        }
    }
}

/// One ledger line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub kind: LedgerKind,
    pub step_id: String,
    pub amount: UsdNanos,
    pub created_at_ms: i64,
}

/// Cost of a call from its usage: cached input tokens at the cached price when one exists.
pub fn cost_of(usage: &Usage, price: &Price) -> UsdNanos {
    let cached = usage.cached_input_tokens.min(usage.input_tokens);
    let fresh = usage.input_tokens - cached;
    let cached_price = price.cached_input.unwrap_or(price.input);
    UsdNanos::for_tokens(fresh, price.input)
        .saturating_add(UsdNanos::for_tokens(cached, cached_price))
        .saturating_add(UsdNanos::for_tokens(usage.output_tokens, price.output))
}

/// What is left of a run's USD cap, never below zero; `None` when the run has no cap.
pub fn remaining(limit: Option<UsdNanos>, spend: UsdNanos) -> Option<UsdNanos> {
    limit.map(|l| UsdNanos(l.saturating_sub(spend).0.max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_cached_price_for_cached_tokens() {
        let price = Price {
            input: UsdNanos(2_500_000_000),
            output: UsdNanos(10_000_000_000),
            cached_input: Some(UsdNanos(1_250_000_000)),
        };
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 100,
            cached_input_tokens: 400,
        };
        // 600 × $2.50/M + 400 × $1.25/M + 100 × $10/M = 0.0015 + 0.0005 + 0.001
        assert_eq!(cost_of(&usage, &price), UsdNanos(3_000_000));
        assert_eq!(
            remaining(Some(UsdNanos(10)), UsdNanos(25)),
            Some(UsdNanos(0))
        );
        assert_eq!(remaining(None, UsdNanos(25)), None);
    }
}
