//! Sliding one-minute windows for `rate_limits` (requests and tokens per minute), one per run
//! and one per agent. A window remembers each admitted call's time and estimated tokens for a
//! minute; a refusal says when the oldest entry leaves, which becomes `Retry-After`.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::RateLimits;

const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct RateWindow {
    calls: Mutex<VecDeque<(i64, u64)>>,
}

/// Which limit refused the call, and how many seconds until it admits again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateRefusal {
    pub limit: &'static str,
    pub retry_after_s: u64,
}

impl RateWindow {
    /// Admits a call of `tokens` at `now_ms` under `limits`, recording it; or refuses it.
    pub fn admit(&self, limits: &RateLimits, now_ms: i64, tokens: u64) -> Result<(), RateRefusal> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        while calls
            .front()
            .is_some_and(|(at, _)| now_ms - at >= WINDOW_MS)
        {
            calls.pop_front();
        }
        let retry = |limit| {
            let oldest = calls.front().map_or(now_ms, |(at, _)| *at);
            let wait_ms = (oldest + WINDOW_MS - now_ms).max(1);
            RateRefusal {
                limit,
                retry_after_s: u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000),
            }
        };
        if limits
            .max_requests_per_minute
            .is_some_and(|max| calls.len() >= max as usize)
        {
            return Err(retry("max_requests_per_minute"));
        }
        let used: u64 = calls.iter().map(|(_, t)| t).sum();
        if limits
            .max_tokens_per_minute
            .is_some_and(|max| used + tokens > max)
            && !calls.is_empty()
        {
            return Err(retry("max_tokens_per_minute"));
        }
        calls.push_back((now_ms, tokens));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_minute_slide() {
        let window = RateWindow::default();
        let limits = RateLimits {
            max_requests_per_minute: Some(2),
            max_tokens_per_minute: None,
        };
        assert!(window.admit(&limits, 0, 1).is_ok());
        assert!(window.admit(&limits, 10_000, 1).is_ok());
        assert_eq!(
            window.admit(&limits, 20_000, 1),
            Err(RateRefusal {
                limit: "max_requests_per_minute",
                retry_after_s: 40
            })
        );
        assert!(
            window.admit(&limits, 60_000, 1).is_ok(),
            "the first call left the window"
        );
    }

    #[test]
    fn tokens_per_minute_count_estimates() {
        let window = RateWindow::default();
        let limits = RateLimits {
            max_requests_per_minute: None,
            max_tokens_per_minute: Some(1000),
        };
        assert!(window.admit(&limits, 0, 600).is_ok());
        assert_eq!(
            window.admit(&limits, 1, 600).map_err(|r| r.limit),
            Err("max_tokens_per_minute")
        );
        assert!(window.admit(&limits, 2, 400).is_ok());
    }
}
