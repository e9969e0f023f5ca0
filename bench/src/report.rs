//! Turns raw timings into the figures the benchmark promises (percentiles, throughput, the added
//! latency and throughput ratio of the gateway against calling the mock directly, and what a policy
//! with every rule set adds over the plain gateway path) and writes them as a table for people or as
//! JSON for scripts.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::PhaseResult;

/// Added p99 at concurrency 1 must stay under this.
pub const TARGET_ADDED_P99: Duration = Duration::from_millis(1);
/// Gateway throughput at high concurrency must reach this fraction of direct throughput.
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.5;
/// The governed path may add at most this much p99 over the plain gateway path at concurrency 1.
pub const TARGET_GOVERNED_OVERHEAD_P99: Duration = Duration::from_micros(150);

/// Percentiles and rate of one target in one scenario.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub ok: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
    /// Successful requests per second of wall time.
    pub rps: f64,
}

impl Summary {
    pub fn of(result: &mut PhaseResult) -> Summary {
        let latencies = &mut result.latencies;
        latencies.sort_unstable();
        let total: Duration = latencies.iter().sum();
        let mean = u32::try_from(latencies.len())
            .ok()
            .filter(|&n| n > 0)
            .map_or(Duration::ZERO, |n| total / n);
        let seconds = result.elapsed.as_secs_f64();
        Summary {
            ok: latencies.len(),
            errors: result.errors,
            p50: percentile(latencies, 50.0),
            p90: percentile(latencies, 90.0),
            p99: percentile(latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
            mean,
            rps: if seconds > 0.0 {
                latencies.len() as f64 / seconds
            } else {
                0.0
            },
        }
    }

    fn to_json(self) -> Value {
        json!({
            "ok": self.ok, "errors": self.errors,
            "p50_us": round1(micros(self.p50)), "p90_us": round1(micros(self.p90)),
            "p99_us": round1(micros(self.p99)), "max_us": round1(micros(self.max)),
            "mean_us": round1(micros(self.mean)), "rps": round1(self.rps),
        })
    }
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One scenario measured against the three targets.
pub struct Scenario {
    pub name: &'static str,
    pub concurrency: usize,
    pub direct: Summary,
    /// Through the bare forwarder: what one HTTP hop in series costs, with no governance.
    pub forwarder: Summary,
    /// Through the gateway, as the agent without a policy.
    pub gateway: Summary,
    /// Through the same gateway, as the agent whose policy sets every rule.
    pub governed: Summary,
    /// The first error seen in any target, prefixed with the target's name.
    pub first_error: Option<String>,
}

impl Scenario {
    fn added_p50(&self) -> f64 {
        micros(self.gateway.p50) - micros(self.direct.p50)
    }

    fn added_p99(&self) -> f64 {
        micros(self.gateway.p99) - micros(self.direct.p99)
    }

    fn throughput_ratio(&self) -> f64 {
        ratio(self.gateway.rps, self.direct.rps)
    }

    /// The ceiling: throughput of a hop that does nothing, over direct.
    fn forwarder_ratio(&self) -> f64 {
        ratio(self.forwarder.rps, self.direct.rps)
    }

    /// What Rungate costs beyond the hop itself.
    fn gateway_forwarder_ratio(&self) -> f64 {
        ratio(self.gateway.rps, self.forwarder.rps)
    }

    fn governed_added_p50(&self) -> f64 {
        micros(self.governed.p50) - micros(self.direct.p50)
    }

    fn governed_added_p99(&self) -> f64 {
        micros(self.governed.p99) - micros(self.direct.p99)
    }

    /// What the policy adds over the plain gateway path.
    fn governed_overhead_p50(&self) -> f64 {
        micros(self.governed.p50) - micros(self.gateway.p50)
    }

    fn governed_overhead_p99(&self) -> f64 {
        micros(self.governed.p99) - micros(self.gateway.p99)
    }

    /// Governed throughput over plain gateway throughput.
    fn governed_throughput_ratio(&self) -> f64 {
        ratio(self.governed.rps, self.gateway.rps)
    }

    fn governed_direct_ratio(&self) -> f64 {
        ratio(self.governed.rps, self.direct.rps)
    }

    fn errors(&self) -> usize {
        self.direct.errors + self.forwarder.errors + self.gateway.errors + self.governed.errors
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// Everything the report shows.
pub struct Report {
    /// How the run was set up (request counts, rounds, machine), shown above the table.
    pub setup: Vec<(&'static str, String)>,
    /// Non-streaming at concurrency 1: the added-latency target.
    pub latency: Scenario,
    /// Streaming at concurrency 1, time to last byte; `None` when skipped.
    pub streaming: Option<Scenario>,
    /// Non-streaming at high concurrency: the throughput target.
    pub throughput: Scenario,
    /// Cross-checks that the gateway really did its work: (what, observed, expected).
    pub checks: Vec<(&'static str, u64, u64)>,
}

impl Report {
    fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        std::iter::once(&self.latency)
            .chain(self.streaming.as_ref())
            .chain(std::iter::once(&self.throughput))
    }

    pub fn errors(&self) -> usize {
        self.scenarios().map(Scenario::errors).sum()
    }

    fn checks_pass(&self) -> bool {
        self.checks
            .iter()
            .all(|(_, observed, expected)| observed == expected)
    }

    fn latency_target_met(&self) -> bool {
        self.latency.added_p99() < micros(TARGET_ADDED_P99)
    }

    fn throughput_target_met(&self) -> bool {
        self.throughput.throughput_ratio() >= TARGET_THROUGHPUT_RATIO
    }

    /// Never met without governed calls to measure (all refused would otherwise read as cheap).
    fn governed_target_met(&self) -> bool {
        self.latency.governed.ok > 0
            && self.latency.governed_overhead_p99() <= micros(TARGET_GOVERNED_OVERHEAD_P99)
    }

    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Rungate benchmark: client -> mock (direct) vs client -> bare hop -> mock (forwarder) vs \
             client -> rungate -> mock (gateway: no policy; governed: every policy rule set)"
        )?;
        for (what, value) in &self.setup {
            writeln!(out, "  {what:<13} {value}")?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{:<26} {:<9} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scenario",
            "target",
            "ok",
            "errors",
            "p50 us",
            "p90 us",
            "p99 us",
            "max us",
            "mean us",
            "req/s"
        )?;
        for scenario in self.scenarios() {
            let name = format!("{} (c={})", scenario.name, scenario.concurrency);
            for (target, s) in [
                ("direct", scenario.direct),
                ("forwarder", scenario.forwarder),
                ("gateway", scenario.gateway),
                ("governed", scenario.governed),
            ] {
                writeln!(
                    out,
                    "{name:<26} {target:<9} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.0}",
                    s.ok,
                    s.errors,
                    micros(s.p50),
                    micros(s.p90),
                    micros(s.p99),
                    micros(s.max),
                    micros(s.mean),
                    s.rps
                )?;
            }
        }
        writeln!(out)?;
        let l = &self.latency;
        writeln!(
            out,
            "added p50 (c=1, non-streaming)  = {:>8.1} us",
            l.added_p50()
        )?;
        writeln!(
            out,
            "added p99 (c=1, non-streaming)  = {:>8.1} us   target < {} us: {}",
            l.added_p99(),
            micros(TARGET_ADDED_P99),
            verdict(self.latency_target_met())
        )?;
        if let Some(s) = &self.streaming {
            writeln!(
                out,
                "added p50 (c=1, streaming TTLB) = {:>8.1} us",
                s.added_p50()
            )?;
            writeln!(
                out,
                "added p99 (c=1, streaming TTLB) = {:>8.1} us",
                s.added_p99()
            )?;
        }
        let t = &self.throughput;
        writeln!(
            out,
            "throughput ratio (c={})         = {:>8.3}      target >= {TARGET_THROUGHPUT_RATIO}: {}   ({:.0} / {:.0} req/s)",
            t.concurrency,
            t.throughput_ratio(),
            verdict(self.throughput_target_met()),
            t.gateway.rps,
            t.direct.rps
        )?;
        writeln!(
            out,
            "forwarder ratio (c={})          = {:>8.3}      the ceiling: a bare hop, no governance ({:.0} / {:.0} req/s)",
            t.concurrency,
            t.forwarder_ratio(),
            t.forwarder.rps,
            t.direct.rps
        )?;
        writeln!(
            out,
            "gateway / forwarder (c={})      = {:>8.3}      what Rungate costs beyond the hop",
            t.concurrency,
            t.gateway_forwarder_ratio(),
        )?;
        writeln!(out)?;
        self.write_governed(out)?;
        writeln!(out)?;
        for (what, observed, expected) in &self.checks {
            let mark = if observed == expected {
                "ok"
            } else {
                "MISMATCH"
            };
            writeln!(
                out,
                "check: {what}: {observed} (expected {expected}) {mark}"
            )?;
        }
        let errors = self.errors();
        if errors > 0 || !self.checks_pass() {
            writeln!(
                out,
                "RUN FLAGGED: {errors} failed requests, checks {}; figures are not trustworthy",
                if self.checks_pass() { "pass" } else { "FAIL" }
            )?;
            for scenario in self.scenarios() {
                if let Some(error) = &scenario.first_error {
                    writeln!(
                        out,
                        "  first error in {} (c={}): {error}",
                        scenario.name, scenario.concurrency
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The governed figures: added latency beside the plain gateway's, what governance adds over
    /// the plain path (with its target), and throughput beside the plain gateway's.
    fn write_governed(&self, out: &mut impl Write) -> std::io::Result<()> {
        let l = &self.latency;
        let mut line = |label: &str, value: String| writeln!(out, "{label:<43} = {value}");
        line(
            "governed added p50 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (plain gateway {:.1} us)",
                l.governed_added_p50(),
                l.added_p50()
            ),
        )?;
        line(
            "governed added p99 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (plain gateway {:.1} us)",
                l.governed_added_p99(),
                l.added_p99()
            ),
        )?;
        line(
            "governed overhead p50 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (governed {:.1} - gateway {:.1})",
                l.governed_overhead_p50(),
                micros(l.governed.p50),
                micros(l.gateway.p50)
            ),
        )?;
        line(
            "governed overhead p99 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   target <= {} us: {}   (governed {:.1} - gateway {:.1})",
                l.governed_overhead_p99(),
                micros(TARGET_GOVERNED_OVERHEAD_P99),
                verdict(self.governed_target_met()),
                micros(l.governed.p99),
                micros(l.gateway.p99)
            ),
        )?;
        if let Some(s) = &self.streaming {
            line(
                "governed overhead p50 (c=1, streaming TTLB)",
                format!(
                    "{:>8.1} us   (governed added {:.1} us, plain gateway added {:.1} us)",
                    s.governed_overhead_p50(),
                    s.governed_added_p50(),
                    s.added_p50()
                ),
            )?;
            line(
                "governed overhead p99 (c=1, streaming TTLB)",
                format!(
                    "{:>8.1} us   (governed added {:.1} us, plain gateway added {:.1} us)",
                    s.governed_overhead_p99(),
                    s.governed_added_p99(),
                    s.added_p99()
                ),
            )?;
        }
        let t = &self.throughput;
        line(
            &format!("governed throughput (c={})", t.concurrency),
            format!(
                "{:>8.0} req/s   {:.3} x gateway ({:.0} req/s), {:.3} x direct",
                t.governed.rps,
                t.governed_throughput_ratio(),
                t.gateway.rps,
                t.governed_direct_ratio()
            ),
        )
    }

    pub fn to_json(&self) -> Value {
        let scenario = |s: &Scenario| {
            json!({
                "name": s.name, "concurrency": s.concurrency,
                "direct": s.direct.to_json(), "forwarder": s.forwarder.to_json(),
                "gateway": s.gateway.to_json(),
                "governed": s.governed.to_json(),
                "added_p50_us": round1(s.added_p50()), "added_p99_us": round1(s.added_p99()),
                "throughput_ratio": round3(s.throughput_ratio()),
                "forwarder_ratio": round3(s.forwarder_ratio()),
                "gateway_forwarder_ratio": round3(s.gateway_forwarder_ratio()),
                "governed_added_p50_us": round1(s.governed_added_p50()),
                "governed_added_p99_us": round1(s.governed_added_p99()),
                "governed_overhead_p50_us": round1(s.governed_overhead_p50()),
                "governed_overhead_p99_us": round1(s.governed_overhead_p99()),
                "governed_throughput_ratio": round3(s.governed_throughput_ratio()),
                "first_error": s.first_error,
            })
        };
        let setup: serde_json::Map<String, Value> = self
            .setup
            .iter()
            .map(|(what, value)| ((*what).to_owned(), Value::from(value.as_str())))
            .collect();
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|(what, observed, expected)| json!({"check": what, "observed": observed, "expected": expected}))
            .collect();
        json!({
            "setup": setup,
            "scenarios": self.scenarios().map(scenario).collect::<Vec<_>>(),
            "added_p50_us": round1(self.latency.added_p50()),
            "added_p99_us": round1(self.latency.added_p99()),
            "added_p99_target_us": micros(TARGET_ADDED_P99),
            "added_p99_target_met": self.latency_target_met(),
            "throughput_ratio": round3(self.throughput.throughput_ratio()),
            "throughput_ratio_target": TARGET_THROUGHPUT_RATIO,
            "throughput_ratio_target_met": self.throughput_target_met(),
            "forwarder_ratio": round3(self.throughput.forwarder_ratio()),
            "gateway_forwarder_ratio": round3(self.throughput.gateway_forwarder_ratio()),
            "governed": {
                "added_p50_us": round1(self.latency.governed_added_p50()),
                "added_p99_us": round1(self.latency.governed_added_p99()),
                "overhead_p50_us": round1(self.latency.governed_overhead_p50()),
                "overhead_p99_us": round1(self.latency.governed_overhead_p99()),
                "overhead_p99_target_us": micros(TARGET_GOVERNED_OVERHEAD_P99),
                "overhead_p99_target_met": self.governed_target_met(),
                "rps": round1(self.throughput.governed.rps),
                "throughput_ratio_to_gateway": round3(self.throughput.governed_throughput_ratio()),
                "throughput_ratio_to_direct": round3(self.throughput.governed_direct_ratio()),
            },
            "errors": self.errors(),
            "checks": checks,
            "flagged": self.errors() > 0 || !self.checks_pass(),
        })
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_micros(100));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_micros(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
