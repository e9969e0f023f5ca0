//! Analytics over recorded steps (SPEC §8 `/api/analytics/*`): cost, latency percentiles, error
//! rates, throughput and top lists, grouped by agent, model, provider, run or time bucket. The
//! store hands over the steps in a window ([`StepFact`]); everything here is pure arithmetic on
//! them, so every figure is derived from the same rows the ledger and audit describe.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::money::UsdNanos;

/// What analytics needs of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepFact {
    pub run_id: String,
    pub agent_id: String,
    pub provider: String,
    pub model: String,
    pub llm: bool,
    /// `success`, `error`, `timeout`, `blocked`.
    pub status: String,
    pub latency_ms: u64,
    pub cost: UsdNanos,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub created_at_ms: i64,
}

/// How facts are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Agent,
    Model,
    Provider,
    Run,
    /// Time buckets of `granularity_ms`.
    Time {
        granularity_ms: i64,
    },
}

impl GroupBy {
    /// `agent`, `model`, `provider`, `run`, `time`/`day`/`hour`/`minute`; time buckets default to
    /// `granularity` (`minute`, `hour`, `day`).
    pub fn parse(raw: &str, granularity: Option<&str>) -> Option<GroupBy> {
        let bucket = |g: &str| match g {
            "minute" => Some(60_000),
            "hour" => Some(3_600_000),
            "day" => Some(86_400_000),
            _ => None,
        };
        Some(match raw {
            "agent" | "agent_id" => GroupBy::Agent,
            "model" => GroupBy::Model,
            "provider" => GroupBy::Provider,
            "run" | "run_id" => GroupBy::Run,
            "time" => GroupBy::Time {
                granularity_ms: bucket(granularity.unwrap_or("hour"))?,
            },
            other => GroupBy::Time {
                granularity_ms: bucket(other)?,
            },
        })
    }

    fn key(self, f: &StepFact) -> String {
        match self {
            GroupBy::Agent => f.agent_id.clone(),
            GroupBy::Model => f.model.clone(),
            GroupBy::Provider => f.provider.clone(),
            GroupBy::Run => f.run_id.clone(),
            GroupBy::Time { granularity_ms } => {
                crate::run::rfc3339(f.created_at_ms.div_euclid(granularity_ms) * granularity_ms)
            }
        }
    }
}

fn groups(facts: &[StepFact], by: GroupBy) -> BTreeMap<String, Vec<&StepFact>> {
    let mut groups: BTreeMap<String, Vec<&StepFact>> = BTreeMap::new();
    for fact in facts {
        groups.entry(by.key(fact)).or_default().push(fact);
    }
    groups
}

fn cost_of(facts: &[&StepFact]) -> UsdNanos {
    facts
        .iter()
        .fold(UsdNanos::ZERO, |acc, f| acc.saturating_add(f.cost))
}

/// Spend and tokens per group, largest spend first.
pub fn costs(facts: &[StepFact], by: GroupBy) -> Vec<Value> {
    let mut rows: Vec<(UsdNanos, Value)> = groups(facts, by)
        .into_iter()
        .map(|(key, group)| {
            let cost = cost_of(&group);
            let row = json!({
                "group": key, "cost_usd": cost.as_usd(), "steps": group.len(),
                "input_tokens": group.iter().map(|f| f.input_tokens).sum::<u64>(),
                "output_tokens": group.iter().map(|f| f.output_tokens).sum::<u64>(),
            });
            (cost, row)
        })
        .collect();
    if !matches!(by, GroupBy::Time { .. }) {
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    }
    rows.into_iter().map(|(_, row)| row).collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Model-call latency per group: p50, p95, p99, mean, max.
pub fn latency(facts: &[StepFact], by: GroupBy) -> Vec<Value> {
    let llm: Vec<StepFact> = facts.iter().filter(|f| f.llm).cloned().collect();
    groups(&llm, by)
        .into_iter()
        .map(|(key, group)| {
            let mut ms: Vec<u64> = group.iter().map(|f| f.latency_ms).collect();
            ms.sort_unstable();
            let mean = ms.iter().sum::<u64>() as f64 / ms.len().max(1) as f64;
            json!({
                "group": key, "count": ms.len(), "p50_ms": percentile(&ms, 50.0),
                "p95_ms": percentile(&ms, 95.0), "p99_ms": percentile(&ms, 99.0),
                "mean_ms": (mean * 10.0).round() / 10.0, "max_ms": ms.last().copied().unwrap_or(0),
            })
        })
        .collect()
}

/// Errors, timeouts and blocked steps per group, with the error rate.
pub fn errors(facts: &[StepFact], by: GroupBy) -> Vec<Value> {
    groups(facts, by)
        .into_iter()
        .map(|(key, group)| {
            let count = |status: &str| group.iter().filter(|f| f.status == status).count();
            let failed = count("error") + count("timeout");
            json!({
                "group": key, "total": group.len(), "errors": count("error"),
                "timeouts": count("timeout"), "blocked": count("blocked"),
                "error_rate": failed as f64 / group.len().max(1) as f64,
            })
        })
        .collect()
}

/// Steps and tokens per time bucket, oldest first.
pub fn throughput(facts: &[StepFact], granularity_ms: i64) -> Vec<Value> {
    let by = GroupBy::Time { granularity_ms };
    groups(facts, by)
        .into_iter()
        .map(|(bucket, group)| {
            let per_s = group.len() as f64 / (granularity_ms as f64 / 1000.0);
            json!({
                "bucket": bucket, "steps": group.len(),
                "llm_calls": group.iter().filter(|f| f.llm).count(),
                "tokens": group.iter().map(|f| f.input_tokens + f.output_tokens).sum::<u64>(),
                "steps_per_second": per_s,
            })
        })
        .collect()
}

/// The `limit` groups with the most of `metric` (`cost`, `tokens`, `steps`, `latency` as p95).
pub fn top(facts: &[StepFact], by: GroupBy, metric: &str, limit: usize) -> Option<Vec<Value>> {
    let value = |group: &[&StepFact]| -> Option<f64> {
        Some(match metric {
            "cost" => cost_of(group).as_usd(),
            "tokens" => group
                .iter()
                .map(|f| f.input_tokens + f.output_tokens)
                .sum::<u64>() as f64,
            "steps" => group.len() as f64,
            "latency" => {
                let mut ms: Vec<u64> = group
                    .iter()
                    .filter(|f| f.llm)
                    .map(|f| f.latency_ms)
                    .collect();
                ms.sort_unstable();
                percentile(&ms, 95.0) as f64
            }
            _ => return None,
        })
    };
    let mut rows = Vec::new();
    for (key, group) in groups(facts, by) {
        rows.push((value(&group)?, key));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    Some(
        rows.into_iter()
            .take(limit)
            .map(|(v, key)| json!({"group": key, "metric": metric, "value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(
        agent: &str,
        model: &str,
        status: &str,
        latency_ms: u64,
        cost: i64,
        at: i64,
    ) -> StepFact {
        StepFact {
            run_id: format!("run-{agent}"),
            agent_id: agent.into(),
            provider: "openai".into(),
            model: model.into(),
            llm: true,
            status: status.into(),
            latency_ms,
            cost: UsdNanos(cost),
            input_tokens: 10,
            output_tokens: 5,
            created_at_ms: at,
        }
    }

    fn sample() -> Vec<StepFact> {
        let mut facts: Vec<StepFact> = (1..=100)
            .map(|i| {
                fact(
                    "a",
                    "gpt-4o-mini",
                    "success",
                    i,
                    1_000,
                    i64::try_from(i).unwrap_or(0) * 1000,
                )
            })
            .collect();
        facts.push(fact("b", "gpt-4o", "error", 500, 50_000, 3_600_000));
        facts.push(fact("b", "gpt-4o", "timeout", 700, 0, 3_600_001));
        facts
    }

    #[test]
    fn costs_latency_and_errors_per_group() {
        let facts = sample();
        let costs = costs(&facts, GroupBy::Agent);
        assert_eq!(costs[0]["group"], "a", "largest spend first");
        assert_eq!(costs[0]["cost_usd"], 0.0001);
        assert_eq!(costs[1]["cost_usd"], 0.00005);
        let latency = latency(&facts, GroupBy::Model);
        let mini = latency
            .iter()
            .find(|r| r["group"] == "gpt-4o-mini")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (
                mini["p50_ms"].clone(),
                mini["p95_ms"].clone(),
                mini["p99_ms"].clone()
            ),
            (json!(50), json!(95), json!(99))
        );
        let errors = errors(&facts, GroupBy::Agent);
        let b = errors
            .iter()
            .find(|r| r["group"] == "b")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (
                b["errors"].clone(),
                b["timeouts"].clone(),
                b["error_rate"].clone()
            ),
            (json!(1), json!(1), json!(1.0))
        );
    }

    #[test]
    fn throughput_buckets_and_top_lists() {
        let facts = sample();
        let hours = throughput(&facts, 3_600_000);
        assert_eq!(hours.len(), 2);
        assert_eq!(
            (hours[0]["steps"].clone(), hours[1]["steps"].clone()),
            (json!(100), json!(2))
        );
        let top = top(&facts, GroupBy::Model, "cost", 1).unwrap_or_default();
        assert_eq!(
            top,
            vec![json!({"group": "gpt-4o-mini", "metric": "cost", "value": 0.0001})]
        );
        assert!(super::top(&facts, GroupBy::Model, "vibes", 1).is_none());
        assert_eq!(
            GroupBy::parse("day", None),
            Some(GroupBy::Time {
                granularity_ms: 86_400_000
            })
        );
        assert_eq!(GroupBy::parse("nonsense", None), None);
    }
}
