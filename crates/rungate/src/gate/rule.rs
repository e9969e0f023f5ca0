//! The `gates` rules of a policy: approval asked for a tool call only when a CEL condition over
//! the call holds (`args.amount_usd > 500`). Expressions are compiled when a policy is saved, so
//! an operator learns about a typo (with its position) then, not when an agent first trips it.
//!
//! Evaluation fails closed: a condition that cannot be evaluated (a missing argument, a type
//! mismatch) asks for approval rather than letting the call through, because a governance rule
//! that silently stops applying is worse than one that asks a person once too often.

use cel::{Context, Program};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One conditional approval rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRule {
    /// Names the rule in gates, audit events and the approver's message.
    pub id: String,
    /// The tool whose calls the rule watches.
    pub tool: String,
    /// CEL over `args` (the call's parsed arguments), `run` and `agent`; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// `slack://#channel` or an `https://` URL told about the pending gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
}

/// Why a rule cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// The rule's field at fault (`when`, `approver_channel`, ...).
    pub field: &'static str,
    pub message: String,
}

impl GateRule {
    /// Compiles `when`; the error names the line and column of the first problem.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.id.trim().is_empty() || self.tool.trim().is_empty() {
            return Err(RuleError {
                field: if self.id.trim().is_empty() {
                    "id"
                } else {
                    "tool"
                },
                message: "must not be empty".into(),
            });
        }
        if self.expires_in_s == Some(0) {
            return Err(RuleError {
                field: "expires_in_s",
                message: "must be greater than 0".into(),
            });
        }
        if let Some(channel) = &self.approver_channel {
            let known = channel.starts_with("slack://#")
                || channel.starts_with("https://")
                || channel.starts_with("http://");
            if !known {
                return Err(RuleError {
                    field: "approver_channel",
                    message: format!("{channel:?} must be slack://#channel or an http(s) URL"),
                });
            }
        }
        if let Some(when) = &self.when {
            compile(when)?;
        }
        Ok(())
    }

    /// Does this rule ask for approval of a call of `tool` with `args`? `run` and `agent` are
    /// the other variables the condition may read.
    pub fn applies(&self, tool: &str, args: &Value, run: &Value, agent: &Value) -> bool {
        if self.tool != tool {
            return false;
        }
        let Some(when) = &self.when else {
            return true;
        };
        match evaluate(when, args, run, agent) {
            Ok(verdict) => verdict,
            Err(why) => {
                tracing::warn!(rule = %self.id, error = %why, "gate condition could not be evaluated; asking for approval");
                true
            }
        }
    }
}

/// The rules among `rules` that ask for approval of this call, in policy order.
pub fn matching_rules<'a>(
    rules: &'a [GateRule],
    tool: &str,
    args: &Value,
    run: &Value,
    agent: &Value,
) -> Vec<&'a GateRule> {
    rules
        .iter()
        .filter(|rule| rule.applies(tool, args, run, agent))
        .collect()
}

fn compile(when: &str) -> Result<Program, RuleError> {
    // The parser reports positions as (line, column) counted from 1.
    Program::compile(when).map_err(|errors| {
        let first = errors.errors.first();
        let message = match first {
            Some(e) => format!(
                "CEL syntax error at line {}, column {}: {}",
                e.pos.0, e.pos.1, e.msg
            ),
            None => format!("CEL syntax error: {errors}"),
        };
        RuleError {
            field: "when",
            message,
        }
    })
}

fn evaluate(when: &str, args: &Value, run: &Value, agent: &Value) -> Result<bool, String> {
    let program = compile(when).map_err(|e| e.message)?;
    let mut context = Context::default();
    for (name, value) in [("args", args), ("run", run), ("agent", agent)] {
        context
            .add_variable(name, value)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    match program.execute(&context) {
        Ok(cel::Value::Bool(verdict)) => Ok(verdict),
        Ok(other) => Err(format!("the condition gave {other:?}, not a boolean")),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(when: Option<&str>) -> GateRule {
        GateRule {
            id: "refund:over-$500".into(),
            tool: "issue_refund".into(),
            when: when.map(str::to_owned),
            approver_channel: None,
            expires_in_s: None,
        }
    }

    #[test]
    fn conditions_read_args_run_and_agent() {
        let run = json!({"id": "r", "spend_usd": 0.5, "steps": 3});
        let agent = json!({"id": "a", "name": "support-bot", "team": "ops"});
        let check = |when: &str, args: Value, expected: bool| {
            assert_eq!(
                rule(Some(when)).applies("issue_refund", &args, &run, &agent),
                expected,
                "{when} over {args}"
            )
        };
        check("args.amount_usd > 500", json!({"amount_usd": 750}), true);
        check("args.amount_usd > 500", json!({"amount_usd": 499.5}), false);
        check("args.amount_usd > 500", json!({"amount_usd": 500.5}), true);
        check("run.steps >= 3 && agent.team == 'ops'", json!({}), true);
        check("agent.name == 'other'", json!({}), false);
        // Fails closed: a missing argument asks for approval.
        check("args.amount_usd > 500", json!({"currency": "usd"}), true);
        check("'not a boolean'", json!({}), true);
    }

    #[test]
    fn only_the_named_tool_is_watched() {
        assert!(rule(None).applies("issue_refund", &json!({}), &json!({}), &json!({})));
        assert!(!rule(None).applies("send_email", &json!({}), &json!({}), &json!({})));
    }

    #[test]
    fn a_bad_expression_is_refused_with_its_position() {
        let err = rule(Some("args.amount_usd >")).validate().err();
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(message.contains("line 1, column"), "{message}");
        assert!(rule(Some("args.amount_usd > 500")).validate().is_ok());
        let mut bad_channel = rule(None);
        bad_channel.approver_channel = Some("email:ops".into());
        assert!(bad_channel.validate().is_err());
    }
}
