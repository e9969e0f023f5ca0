//! Policies: named, versioned rule documents (SPEC §4). Every change is a new immutable
//! version; a run pins the version it started with, so an operator editing a policy never
//! changes the rules under a run already in flight. This module owns the document shape and
//! the pure decisions; which rules are enforced where is the proxy's business.

mod document;
mod rate;
mod routing;

pub use document::{BudgetRules, PolicyDocument, RateLimits};
pub use rate::{RateRefusal, RateWindow, WINDOW_MS as RATE_WINDOW_MS, judge as judge_rate};
pub use routing::{AttemptFailure, Next, OnRateLimit, RetryOn, Routing};

use serde::Serialize;

/// A stored policy version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyVersion {
    pub policy_id: String,
    pub name: String,
    pub version: i64,
    pub document: PolicyDocument,
    pub created_at_ms: i64,
}

/// A refusal decided by a policy. It is a value, not an error: the proxy renders it.
#[derive(Clone, Debug, PartialEq)]
pub enum Denial {
    ModelNotAllowed { model: String, allowed: Vec<String> },
}

/// Does `model` on `provider` pass `allowed_models` / `blocked_models`? Entries are bare
/// (`gpt-4o`) or provider-prefixed (`openai/gpt-4o`); a trailing `*` matches a prefix
/// (`claude-sonnet-4*` admits dated snapshots).
pub fn check_model(doc: &PolicyDocument, provider: &str, model: &str) -> Result<(), Denial> {
    let matches = |entry: &String| model_matches(entry, provider, model);
    let blocked = doc
        .blocked_models
        .as_ref()
        .is_some_and(|list| list.iter().any(matches));
    let allowed = doc
        .allowed_models
        .as_ref()
        .is_none_or(|list| list.iter().any(matches));
    if blocked || !allowed {
        return Err(Denial::ModelNotAllowed {
            model: model.to_owned(),
            allowed: doc.allowed_models.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

fn model_matches(entry: &str, provider: &str, model: &str) -> bool {
    let bare = match entry.split_once('/') {
        Some((p, rest)) if p == provider => rest,
        Some(_) => return false,
        None => entry,
    };
    match bare.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => bare == model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(allowed: Option<&[&str]>, blocked: Option<&[&str]>) -> PolicyDocument {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        PolicyDocument {
            allowed_models: allowed.map(owned),
            blocked_models: blocked.map(owned),
            ..PolicyDocument::default()
        }
    }

    #[test]
    fn model_rules() {
        let check = |d: &PolicyDocument, provider: &str, model: &str| {
            check_model(d, provider, model).is_ok()
        };
        let any = doc(None, None);
        assert!(check(&any, "openai", "gpt-4o"));
        let only = doc(Some(&["gpt-4o-mini", "anthropic/claude-sonnet-4*"]), None);
        assert!(check(&only, "openai", "gpt-4o-mini"));
        assert!(!check(&only, "openai", "gpt-4o"));
        assert!(check(&only, "anthropic", "claude-sonnet-4-20250514"));
        assert!(!check(&only, "openai", "claude-sonnet-4"));
        let blocked = doc(None, Some(&["openai/gpt-4o"]));
        assert!(!check(&blocked, "openai", "gpt-4o"));
        assert!(check(&blocked, "openai", "gpt-4o-mini"));
        let empty = doc(Some(&[]), None);
        assert!(!check(&empty, "openai", "gpt-4o"));
    }
}

#[cfg(test)]
mod example_tests {
    use super::PolicyDocument;

    #[test]
    fn the_example_policy_parses_and_validates() -> Result<(), Box<dyn std::error::Error>> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.yaml");
        let text = std::fs::read_to_string(path)?;
        let doc: PolicyDocument = serde_norway::from_str(&text)?;
        assert_eq!(doc.validate(), Ok(()));
        assert_eq!(doc.hard_limit_usd(), Some(1.0));
        Ok(())
    }
}
