//! The policy document of SPEC §4 as a typed, strict structure: an unknown or misspelled
//! field is an error naming it, never a silently missing rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<crate::gate::GateRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_limits: Option<BTreeMap<String, u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<super::Routing>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_limit_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hourly_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp_max_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exceed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpriced_models: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_minute: Option<u64>,
}

impl PolicyDocument {
    /// Checks values serde cannot: ranges and enumerations. Returns the field path at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(budget) = &self.budget {
            let money = [
                ("budget.hard_limit_usd", budget.hard_limit_usd),
                (
                    "budget.agent_hourly_limit_usd",
                    budget.agent_hourly_limit_usd,
                ),
            ];
            for (field, value) in money {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err((field.into(), "must be a non-negative number".into()));
                }
            }
            if budget.alert_at.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(("budget.alert_at".into(), "must be between 0 and 1".into()));
            }
            let choices = [
                (
                    "budget.enforcement",
                    &budget.enforcement,
                    &["projected", "crossed"][..],
                ),
                (
                    "budget.on_exceed",
                    &budget.on_exceed,
                    &["block", "approval"][..],
                ),
                (
                    "budget.unpriced_models",
                    &budget.unpriced_models,
                    &["deny", "allow_uncounted"][..],
                ),
            ];
            for (field, value, allowed) in choices {
                if let Some(v) = value {
                    if !allowed.contains(&v.as_str()) {
                        return Err((field.into(), format!("{v:?} is not one of {allowed:?}")));
                    }
                }
            }
        }
        for (i, rule) in self.gates.iter().flatten().enumerate() {
            rule.validate()
                .map_err(|e| (format!("gates[{i}].{}", e.field), e.message))?;
        }
        if let Some(routing) = &self.routing {
            routing.validate()?;
        }
        if self.idle_timeout_s == Some(0) {
            return Err(("idle_timeout_s".into(), "must be greater than 0".into()));
        }
        Ok(())
    }

    /// Does any rule of this policy open approval gates? Runs without such rules never pay for
    /// a gate lookup.
    pub fn has_approval_rules(&self) -> bool {
        self.require_approval
            .as_ref()
            .is_some_and(|l| !l.is_empty())
            || self.gates.as_ref().is_some_and(|g| !g.is_empty())
            || self.budget_needs_approval()
    }

    /// `budget.on_exceed: approval`: a call that would cross the USD cap pauses the run.
    pub fn budget_needs_approval(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|b| b.on_exceed.as_deref() == Some("approval"))
    }

    pub fn hard_limit_usd(&self) -> Option<f64> {
        self.budget.as_ref().and_then(|b| b.hard_limit_usd)
    }

    pub fn hard_limit_tokens(&self) -> Option<u64> {
        self.budget.as_ref().and_then(|b| b.hard_limit_tokens)
    }
}
