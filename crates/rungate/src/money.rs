//! Integer money. Every amount that crosses a module boundary is a [`UsdNanos`]: a count of
//! billionths of a US dollar in an `i64` (±9.2 billion USD). Nano-dollars keep per-token prices
//! exact (gpt-4o-mini input is 150 nano-dollars per token), so summing thousands of steps never
//! drifts the way `f64` dollars would. Floats appear only at the edge, when rendering JSON.

use std::fmt;

/// A USD amount in nano-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UsdNanos(pub i64);

const NANOS_PER_USD: i64 = 1_000_000_000;

impl UsdNanos {
    pub const ZERO: UsdNanos = UsdNanos(0);

    /// Converts an operator- or agent-supplied dollar amount. Negative, NaN and absurdly large
    /// values are rejected rather than wrapped.
    pub fn from_usd(usd: f64) -> Option<UsdNanos> {
        if !usd.is_finite() || !(0.0..=1.0e9).contains(&usd) {
            return None;
        }
        Some(UsdNanos((usd * NANOS_PER_USD as f64).round() as i64))
    }

    /// Parses a decimal dollar amount as an operator types it (`"0.5"`, `"12"`, `"1.000000001"`)
    /// exactly, without a detour through `f64`. Signs, exponents, more than nine decimals (finer
    /// than a nano-dollar) and amounts above `from_usd`'s range are refused.
    pub fn parse_usd(text: &str) -> Option<UsdNanos> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 9
            || whole.len() > 10
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let fraction: i64 = format!("{fraction:0<9}").parse().ok()?;
        let nanos = whole.checked_mul(NANOS_PER_USD)?.checked_add(fraction)?;
        (nanos <= 1_000_000_000 * NANOS_PER_USD).then_some(UsdNanos(nanos))
    }

    pub fn as_usd(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    pub fn saturating_add(self, other: UsdNanos) -> UsdNanos {
        UsdNanos(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: UsdNanos) -> UsdNanos {
        UsdNanos(self.0.saturating_sub(other.0))
    }

    /// Price of `tokens` at `per_million` nano-dollars per million tokens, rounded up so the
    /// gateway never under-charges by a rounding step.
    pub fn for_tokens(tokens: u64, per_million: UsdNanos) -> UsdNanos {
        let product = i128::from(tokens) * i128::from(per_million.0);
        let nanos = (product + 999_999) / 1_000_000;
        UsdNanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// Fixed six-decimal rendering used by the `x-rungate-*-usd` headers.
    pub fn to_header(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let micros = (abs + 500) / 1000;
        format!("{sign}{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

impl fmt::Display for UsdNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_prices_are_exact_and_round_up() {
        let gpt4o_mini_input = UsdNanos(150_000_000); // $0.15 per million
        assert_eq!(UsdNanos::for_tokens(1, gpt4o_mini_input), UsdNanos(150));
        assert_eq!(
            UsdNanos::for_tokens(1_000_000, gpt4o_mini_input),
            gpt4o_mini_input
        );
        assert_eq!(UsdNanos::for_tokens(1, UsdNanos(1)), UsdNanos(1));
    }

    #[test]
    fn typed_dollar_amounts_parse_exactly_or_not_at_all() {
        let check = |text: &str, expected: Option<i64>| {
            assert_eq!(
                UsdNanos::parse_usd(text),
                expected.map(UsdNanos),
                "{text:?}"
            );
        };
        check("0.5", Some(500_000_000));
        check("12", Some(12_000_000_000));
        check(".25", Some(250_000_000));
        check("3.", Some(3_000_000_000));
        check("0.000000001", Some(1));
        check("1000000000", Some(1_000_000_000 * NANOS_PER_USD));
        for bad in [
            "",
            ".",
            "-1",
            "+1",
            "1e3",
            "abc",
            "0.5usd",
            " 1",
            "1,5",
            "0.0000000001",
            "1000000001",
            "99999999999",
        ] {
            check(bad, None);
        }
    }

    #[test]
    fn header_rendering_has_six_decimals() {
        assert_eq!(UsdNanos(1_030_000_000).to_header(), "1.030000");
        assert_eq!(UsdNanos(150).to_header(), "0.000000");
        assert_eq!(UsdNanos(1_500).to_header(), "0.000002");
        assert_eq!(UsdNanos::from_usd(0.25), Some(UsdNanos(250_000_000)));
        assert_eq!(UsdNanos::from_usd(-1.0), None);
    }
}
