//! Sliding one-minute windows for `rate_limits` (requests and tokens per minute), one per run
//! and one per agent. A window remembers each admitted call's time and estimated tokens for a
//! minute; a refusal says when the oldest entry leaves, which becomes `Retry-After`. The tokens
//! inside the window are kept as a running sum, so admitting a call costs the same whether the
//! window holds ten calls or a hundred thousand.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::RateLimits;

/// How far back a window looks.
pub const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct RateWindow {
    inner: Mutex<Window>,
}

/// Admitted calls of the last minute, oldest first, and the sum of their tokens.
#[derive(Debug, Default)]
struct Window {
    calls: VecDeque<(i64, u64)>,
    tokens: u64,
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
        let mut window = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Window {
            calls,
            tokens: used,
        } = &mut *window;
        while let Some(&(at, expired)) = calls.front() {
            if now_ms - at < WINDOW_MS {
                break;
            }
            calls.pop_front();
            *used = used.saturating_sub(expired);
        }
        let oldest = calls.front().map_or(now_ms, |(at, _)| *at);
        judge(limits, calls.len() as u64, *used, oldest, now_ms, tokens)?;
        calls.push_back((now_ms, tokens));
        *used = used.saturating_add(tokens);
        Ok(())
    }
}

/// Judges a call of `tokens` at `now_ms` against a window holding `calls` admitted calls with
/// `used` tokens, the oldest admitted at `oldest_ms`. Shared by the in-memory window and the
/// database's (`store::postgres::writer`), so one gateway and several refuse alike.
pub fn judge(
    limits: &RateLimits,
    calls: u64,
    used: u64,
    oldest_ms: i64,
    now_ms: i64,
    tokens: u64,
) -> Result<(), RateRefusal> {
    let retry = |limit| {
        let wait_ms = (oldest_ms + WINDOW_MS - now_ms).max(1);
        RateRefusal {
            limit,
            retry_after_s: u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000),
        }
    };
    if limits
        .max_requests_per_minute
        .is_some_and(|max| calls >= u64::from(max))
    {
        return Err(retry("max_requests_per_minute"));
    }
    if limits
        .max_tokens_per_minute
        .is_some_and(|max| used.saturating_add(tokens) > max)
        && calls > 0
    {
        return Err(retry("max_tokens_per_minute"));
    }
    Ok(())
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

    #[test]
    fn tokens_that_leave_the_window_are_given_back() {
        let window = RateWindow::default();
        let limits = RateLimits {
            max_requests_per_minute: None,
            max_tokens_per_minute: Some(1000),
        };
        assert!(window.admit(&limits, 0, 700).is_ok());
        assert!(window.admit(&limits, 30_000, 300).is_ok());
        assert!(window.admit(&limits, 59_999, 1).is_err(), "window full");
        assert!(
            window.admit(&limits, 60_000, 700).is_ok(),
            "the first 700 tokens left at 60 s"
        );
        assert!(window.admit(&limits, 60_001, 1).is_err(), "full again");
    }
}
