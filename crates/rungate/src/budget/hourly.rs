//! The per-agent sliding-hour USD cap (`budget.agent_hourly_limit_usd`): what an agent's
//! settled steps cost in the last hour, across all its runs. Seeded from the store the first
//! time an agent is seen after a start, so a restart does not reset an agent's hour.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::money::UsdNanos;

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Default)]
pub struct HourlySpend {
    costs: Mutex<VecDeque<(i64, UsdNanos)>>,
}

impl HourlySpend {
    /// A window holding `spent` as of `at_ms` (the seed read from the store).
    pub fn seeded(at_ms: i64, spent: UsdNanos) -> HourlySpend {
        let window = HourlySpend::default();
        if spent > UsdNanos::ZERO {
            window.record(at_ms, spent);
        }
        window
    }

    pub fn record(&self, at_ms: i64, cost: UsdNanos) {
        let mut costs = self.costs.lock().unwrap_or_else(PoisonError::into_inner);
        costs.push_back((at_ms, cost));
    }

    /// Spend in the hour before `now_ms`.
    pub fn spent(&self, now_ms: i64) -> UsdNanos {
        let mut costs = self.costs.lock().unwrap_or_else(PoisonError::into_inner);
        while costs.front().is_some_and(|(at, _)| now_ms - at >= HOUR_MS) {
            costs.pop_front();
        }
        costs
            .iter()
            .fold(UsdNanos::ZERO, |sum, (_, cost)| sum.saturating_add(*cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_leaves_the_window_after_an_hour() {
        let window = HourlySpend::seeded(0, UsdNanos(5));
        window.record(1_000, UsdNanos(7));
        assert_eq!(window.spent(2_000), UsdNanos(12));
        assert_eq!(window.spent(HOUR_MS), UsdNanos(7));
        assert_eq!(window.spent(HOUR_MS + 1_000), UsdNanos::ZERO);
    }
}
