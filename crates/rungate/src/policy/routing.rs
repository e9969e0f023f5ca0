//! The `routing` block of a policy (SPEC §4): which providers a call may be re-sent to when one
//! fails, and when. It is pure data plus the two decisions the proxy asks of it — "is this
//! failure worth another attempt?" and "what is this model called at that provider?" — so the
//! failover loop in `proxy::attempts` reads as a loop, not as a rule book.
//!
//! Semantics, chosen to be predictable under load:
//! - `default_chain` lists provider kinds (`openai`, `anthropic`, `gemini`, `openai_compatible`)
//!   or provider key names; the model's own provider always comes first.
//! - `max_retries` is how many more times the *same* provider is tried before moving on
//!   (default 0), so the worst case is `chain × (1 + max_retries)` attempts.
//! - `retry_on` (default `[429, 5xx, timeout]`) names what a retry or failover is for. An
//!   upstream that cannot be reached at all counts as `5xx` (it is what a load balancer in
//!   front of it would answer). Any other 4xx is the caller's problem and goes back as it is.
//! - `on_rate_limit: failover_first` (default) moves a 429 straight to the next provider;
//!   `retry_first` spends the same-provider retries on it first.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<RetryOn>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_rate_limit: Option<OnRateLimit>,
    /// `{model: {provider or key name: model there}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_map: BTreeMap<String, BTreeMap<String, String>>,
}

/// One `retry_on` entry: an exact status (`429`, `503`), every 5xx, or a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryOn {
    Status(u16),
    ServerErrors,
    Timeout,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRateLimit {
    #[default]
    FailoverFirst,
    RetryFirst,
}

/// Why an attempt produced no usable answer, as far as routing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The provider answered with this error status.
    Status(u16),
    /// No response head within the timeout.
    Timeout,
    /// Connection refused, reset, DNS: no HTTP answer at all.
    Unreachable,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try the same provider again.
    Retry,
    /// Move on to the next provider of the chain.
    Failover,
    /// Give the failure to the caller.
    GiveUp,
}

/// Hard ceiling on same-provider retries, whatever a policy says: a typo of `max_retries: 100`
/// must not turn one call into a hundred.
pub const MAX_RETRIES_CEILING: u32 = 5;

const DEFAULT_RETRY_ON: [RetryOn; 3] = [
    RetryOn::Status(429),
    RetryOn::ServerErrors,
    RetryOn::Timeout,
];

impl Routing {
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, entry) in self.default_chain.iter().enumerate() {
            if entry.trim().is_empty() {
                return Err((
                    format!("routing.default_chain[{i}]"),
                    "must name a provider or a provider key".into(),
                ));
            }
        }
        if self.timeout_ms == Some(0) {
            return Err(("routing.timeout_ms".into(), "must be greater than 0".into()));
        }
        if self.max_retries.is_some_and(|n| n > MAX_RETRIES_CEILING) {
            return Err((
                "routing.max_retries".into(),
                format!("must be at most {MAX_RETRIES_CEILING}"),
            ));
        }
        for (model, targets) in &self.model_map {
            for (target, mapped) in targets {
                if mapped.trim().is_empty() {
                    return Err((
                        format!("routing.model_map.{model}.{target}"),
                        "must be a model name".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    fn retries_on(&self, failure: AttemptFailure) -> bool {
        let list = self.retry_on.as_deref().unwrap_or(&DEFAULT_RETRY_ON);
        list.iter().any(|rule| match (rule, failure) {
            (RetryOn::Status(code), AttemptFailure::Status(status)) => *code == status,
            (RetryOn::ServerErrors, AttemptFailure::Status(status)) => (500..600).contains(&status),
            (RetryOn::ServerErrors, AttemptFailure::Unreachable) => true,
            (RetryOn::Timeout, AttemptFailure::Timeout) => true,
            _ => false,
        })
    }

    /// After `failure` on a provider already retried `retries` times: retry, fail over, or
    /// give up. Whether a next provider exists is the caller's to know (`has_next`).
    pub fn next(&self, failure: AttemptFailure, retries: u32, has_next: bool) -> Next {
        if !self.retries_on(failure) {
            return Next::GiveUp;
        }
        let can_retry = retries < self.max_retries.unwrap_or(0).min(MAX_RETRIES_CEILING);
        let rate_limited = failure == AttemptFailure::Status(429);
        let failover_first =
            rate_limited && self.on_rate_limit.unwrap_or_default() == OnRateLimit::FailoverFirst;
        match (can_retry, has_next) {
            (true, true) if failover_first => Next::Failover,
            (true, _) => Next::Retry,
            (false, true) => Next::Failover,
            (false, false) => Next::GiveUp,
        }
    }

    /// The model to ask `target` (a provider kind or key name) for, when the call names
    /// `model`; `None` when the map has no entry for that pair.
    pub fn mapped_model(&self, model: &str, target: &str) -> Option<&str> {
        self.model_map
            .get(model)
            .and_then(|targets| targets.get(target))
            .map(String::as_str)
    }
}

impl Serialize for RetryOn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryOn::Status(code) => serializer.serialize_u16(*code),
            RetryOn::ServerErrors => serializer.serialize_str("5xx"),
            RetryOn::Timeout => serializer.serialize_str("timeout"),
        }
    }
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RetryOn, D::Error> {
        struct RetryOnVisitor;
        impl Visitor<'_> for RetryOnVisitor {
            type Value = RetryOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an HTTP status between 400 and 599, \"5xx\" or \"timeout\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RetryOn, E> {
                match u16::try_from(v) {
                    Ok(code) if (400..600).contains(&code) => Ok(RetryOn::Status(code)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RetryOn, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RetryOn, E> {
                match v {
                    "5xx" => Ok(RetryOn::ServerErrors),
                    "timeout" => Ok(RetryOn::Timeout),
                    other => match other.parse::<u64>() {
                        Ok(code) => self.visit_u64(code),
                        Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                    },
                }
            }
        }
        deserializer.deserialize_any(RetryOnVisitor)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn routing(json: &str) -> Routing {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_spec_example_parses_and_round_trips() {
        let r = routing(
            r#"{"default_chain":["openai","anthropic"],"timeout_ms":10000,
                "retry_on":[429,"5xx","timeout"],"max_retries":1,"on_rate_limit":"failover_first",
                "model_map":{"gpt-4o":{"anthropic":"claude-sonnet-4"}}}"#,
        );
        assert_eq!(
            r.retry_on,
            Some(vec![
                RetryOn::Status(429),
                RetryOn::ServerErrors,
                RetryOn::Timeout
            ])
        );
        assert_eq!(
            r.mapped_model("gpt-4o", "anthropic"),
            Some("claude-sonnet-4")
        );
        assert_eq!(r.mapped_model("gpt-4o", "gemini"), None);
        let back: Routing = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        r.validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_their_path() {
        for bad in [
            r#"{"retry_on":[200]}"#,
            r#"{"retry_on":["4xx"]}"#,
            r#"{"on_rate_limit":"wait"}"#,
            r#"{"chain":[]}"#,
        ] {
            assert!(serde_json::from_str::<Routing>(bad).is_err(), "{bad}");
        }
        let (field, _) = routing(r#"{"max_retries":50}"#).validate().unwrap_err();
        assert_eq!(field, "routing.max_retries");
        let (field, _) = routing(r#"{"model_map":{"gpt-4o":{"anthropic":""}}}"#)
            .validate()
            .unwrap_err();
        assert_eq!(field, "routing.model_map.gpt-4o.anthropic");
        assert_eq!(
            routing(r#"{"retry_on":["503"]}"#).retry_on,
            Some(vec![RetryOn::Status(503)])
        );
    }

    #[test]
    fn defaults_fail_over_on_429_5xx_timeout_and_unreachable_but_not_on_4xx() {
        let r = Routing::default();
        for failure in [
            AttemptFailure::Status(429),
            AttemptFailure::Status(500),
            AttemptFailure::Status(503),
            AttemptFailure::Timeout,
            AttemptFailure::Unreachable,
        ] {
            assert_eq!(r.next(failure, 0, true), Next::Failover, "{failure:?}");
            assert_eq!(r.next(failure, 0, false), Next::GiveUp, "{failure:?}");
        }
        assert_eq!(r.next(AttemptFailure::Status(400), 0, true), Next::GiveUp);
        assert_eq!(r.next(AttemptFailure::Status(401), 0, true), Next::GiveUp);
    }

    #[test]
    fn retries_come_before_failover_except_for_rate_limits_by_default() {
        let r = routing(r#"{"max_retries":1}"#);
        assert_eq!(r.next(AttemptFailure::Status(500), 0, true), Next::Retry);
        assert_eq!(r.next(AttemptFailure::Status(500), 1, true), Next::Failover);
        assert_eq!(r.next(AttemptFailure::Status(500), 0, false), Next::Retry);
        assert_eq!(r.next(AttemptFailure::Status(429), 0, true), Next::Failover);
        assert_eq!(r.next(AttemptFailure::Status(429), 0, false), Next::Retry);
        let patient = routing(r#"{"max_retries":1,"on_rate_limit":"retry_first"}"#);
        assert_eq!(
            patient.next(AttemptFailure::Status(429), 0, true),
            Next::Retry
        );
        assert_eq!(
            patient.next(AttemptFailure::Status(429), 1, true),
            Next::Failover
        );
    }

    #[test]
    fn retry_on_narrows_what_is_worth_another_attempt() {
        let r = routing(r#"{"retry_on":["timeout"]}"#);
        assert_eq!(r.next(AttemptFailure::Timeout, 0, true), Next::Failover);
        assert_eq!(r.next(AttemptFailure::Status(500), 0, true), Next::GiveUp);
        assert_eq!(r.next(AttemptFailure::Status(429), 0, true), Next::GiveUp);
        let exact = routing(r#"{"retry_on":[503]}"#);
        assert_eq!(
            exact.next(AttemptFailure::Status(503), 0, true),
            Next::Failover
        );
        assert_eq!(
            exact.next(AttemptFailure::Status(500), 0, true),
            Next::GiveUp
        );
    }
}
