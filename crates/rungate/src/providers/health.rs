//! A circuit breaker per provider key, and the health figures `GET /api/providers/health`
//! shows. A key that keeps failing is skipped for a cool-down instead of making every call of
//! every run wait for its timeout; after the cool-down one call (the probe) is let through, and
//! its outcome closes the circuit or opens it again.
//!
//! Every proxied attempt reports here, so the state is atomics only: no lock is taken on the
//! hot path once a key's breaker exists (the map is read-locked to find it, write-locked only
//! the first time a key is seen). The breaker never refuses the last provider a call has left:
//! that decision belongs to the failover loop, which knows whether there is another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;

use super::Provider;

/// When a circuit opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit skips the key before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// May an attempt use this key now?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed circuit: go ahead.
    Pass,
    /// The cool-down is over and this attempt is the one probe.
    Probe,
    /// Open: skip the key; the circuit probes again in this many milliseconds.
    Skip { retry_in_ms: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// One key's breaker and counters.
#[derive(Debug)]
pub struct Breaker {
    provider: Provider,
    consecutive_failures: AtomicU32,
    /// 0 while closed; the end of the cool-down while open or half-open.
    open_until_ms: AtomicI64,
    probing: AtomicBool,
    successes: AtomicU64,
    failures: AtomicU64,
    times_opened: AtomicU64,
    last_failure: Mutex<Option<(i64, String)>>,
}

/// What the health endpoint shows for one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyHealth {
    pub key_id: String,
    pub provider: &'static str,
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub successes: u64,
    pub failures: u64,
    pub times_opened: u64,
    pub last_error: Option<String>,
    pub last_failure_at_ms: Option<i64>,
    /// When an open circuit lets its next probe through.
    pub retry_at_ms: Option<i64>,
}

pub struct Breakers {
    settings: BreakerSettings,
    by_key: RwLock<HashMap<Arc<str>, Arc<Breaker>>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Breakers {
        Breakers {
            settings,
            by_key: RwLock::default(),
        }
    }

    /// The breaker of `key_id`, created closed on first use.
    pub fn of(&self, key_id: &Arc<str>, provider: Provider) -> Arc<Breaker> {
        if let Some(breaker) = self
            .by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key_id)
        {
            return breaker.clone();
        }
        self.by_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key_id.clone())
            .or_insert_with(|| Arc::new(Breaker::new(provider)))
            .clone()
    }

    pub fn admit(&self, breaker: &Breaker, now_ms: i64) -> Admission {
        breaker.admit(now_ms)
    }

    pub fn record_success(&self, breaker: &Breaker) {
        breaker.success();
    }

    pub fn record_failure(&self, breaker: &Breaker, now_ms: i64, message: &str) {
        breaker.failure(&self.settings, now_ms, message);
    }

    /// Health of every key that has carried traffic since the gateway started.
    pub fn snapshot(&self, now_ms: i64) -> Vec<KeyHealth> {
        let map = self
            .by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<KeyHealth> = map
            .iter()
            .map(|(key_id, breaker)| breaker.health(key_id, now_ms))
            .collect();
        all.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        all
    }
}

impl Breaker {
    fn new(provider: Provider) -> Breaker {
        Breaker {
            provider,
            consecutive_failures: AtomicU32::new(0),
            open_until_ms: AtomicI64::new(0),
            probing: AtomicBool::new(false),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            times_opened: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        }
    }

    fn admit(&self, now_ms: i64) -> Admission {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Admission::Pass;
        }
        if now_ms < until {
            return Admission::Skip {
                retry_in_ms: u64::try_from(until - now_ms).unwrap_or(0),
            };
        }
        // Half-open: exactly one caller wins the probe; the others keep skipping until it
        // reports back.
        match self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Skip { retry_in_ms: 0 },
        }
    }

    fn success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Release);
        self.open_until_ms.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    fn failure(&self, settings: &BreakerSettings, now_ms: i64, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        let was_probe = self.probing.swap(false, Ordering::AcqRel);
        if was_probe || failures >= settings.failure_threshold {
            let cooldown = i64::try_from(settings.cooldown.as_millis()).unwrap_or(i64::MAX);
            let previous = self
                .open_until_ms
                .swap(now_ms.saturating_add(cooldown), Ordering::AcqRel);
            if previous == 0 {
                self.times_opened.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut last = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some((now_ms, message.chars().take(300).collect()));
    }

    fn health(&self, key_id: &str, now_ms: i64) -> KeyHealth {
        let until = self.open_until_ms.load(Ordering::Acquire);
        let state = match until {
            0 => CircuitState::Closed,
            until if now_ms < until => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        };
        let last = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        KeyHealth {
            key_id: key_id.to_owned(),
            provider: self.provider.name(),
            state,
            consecutive_failures: self.consecutive_failures.load(Ordering::Acquire),
            successes: self.successes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            times_opened: self.times_opened.load(Ordering::Relaxed),
            last_failure_at_ms: last.as_ref().map(|(at, _)| *at),
            last_error: last.map(|(_, message)| message),
            retry_at_ms: (until != 0).then_some(until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers() -> (Breakers, Arc<Breaker>) {
        let breakers = Breakers::new(BreakerSettings {
            failure_threshold: 3,
            cooldown: Duration::from_millis(1000),
        });
        let breaker = breakers.of(&Arc::from("pk_1"), Provider::OpenAi);
        (breakers, breaker)
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let (b, key) = breakers();
        b.record_failure(&key, 10, "500");
        b.record_failure(&key, 11, "500");
        b.record_success(&key);
        b.record_failure(&key, 12, "500");
        b.record_failure(&key, 13, "500");
        assert_eq!(b.admit(&key, 14), Admission::Pass);
        b.record_failure(&key, 14, "answered 503");
        assert_eq!(b.admit(&key, 15), Admission::Skip { retry_in_ms: 999 });
        let health = &b.snapshot(15)[0];
        assert_eq!(health.state, CircuitState::Open);
        assert_eq!(
            (health.successes, health.failures, health.times_opened),
            (1, 5, 1)
        );
        assert_eq!(health.last_error.as_deref(), Some("answered 503"));
        assert_eq!(health.retry_at_ms, Some(1014));
    }

    #[test]
    fn after_the_cooldown_one_probe_passes_and_decides() {
        let (b, key) = breakers();
        for at in 0..3 {
            b.record_failure(&key, at, "timeout");
        }
        assert!(matches!(b.admit(&key, 500), Admission::Skip { .. }));
        assert_eq!(b.admit(&key, 1002), Admission::Probe);
        // A second caller during the probe still skips.
        assert!(matches!(b.admit(&key, 1003), Admission::Skip { .. }));
        assert_eq!(b.snapshot(1003)[0].state, CircuitState::HalfOpen);
        // The probe fails: open again for a full cool-down.
        b.record_failure(&key, 1004, "timeout");
        assert_eq!(b.admit(&key, 1500), Admission::Skip { retry_in_ms: 504 });
        assert_eq!(b.admit(&key, 2004), Admission::Probe);
        b.record_success(&key);
        assert_eq!(b.admit(&key, 2005), Admission::Pass);
        let health = &b.snapshot(2005)[0];
        assert_eq!(health.state, CircuitState::Closed);
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.times_opened, 1);
    }
}
