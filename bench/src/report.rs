//! Turns raw timings into the figures the benchmark promises (percentiles, throughput, the added
//! latency and throughput ratio of the gateway against calling the mock directly, and what a policy
//! with every rule set, a translation to another provider's format or a failover adds over the
//! plain gateway path, all from the same run) and writes them as a table for people or as JSON for
//! scripts.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::PhaseResult;
use crate::targets::{COUNT, Target};

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

/// One scenario measured against every target.
pub struct Scenario {
    pub name: &'static str,
    pub concurrency: usize,
    /// Indexed by [`Target::index`].
    pub summaries: [Summary; COUNT],
    /// The first error seen in any target, prefixed with the target's name.
    pub first_error: Option<String>,
}

impl Scenario {
    fn of(&self, target: Target) -> Summary {
        self.summaries[target.index()]
    }

    /// `target` p50 − direct p50: what the path costs over calling the mock.
    fn added_p50_of(&self, target: Target) -> f64 {
        micros(self.of(target).p50) - micros(self.of(Target::Direct).p50)
    }

    fn added_p99_of(&self, target: Target) -> f64 {
        micros(self.of(target).p99) - micros(self.of(Target::Direct).p99)
    }

    /// `target` p50 − plain gateway p50: what the path costs over the plain gateway path.
    fn overhead_p50_of(&self, target: Target) -> f64 {
        micros(self.of(target).p50) - micros(self.of(Target::Gateway).p50)
    }

    fn overhead_p99_of(&self, target: Target) -> f64 {
        micros(self.of(target).p99) - micros(self.of(Target::Gateway).p99)
    }

    /// `target` req/s ÷ `base` req/s.
    fn rps_ratio(&self, target: Target, base: Target) -> f64 {
        ratio(self.of(target).rps, self.of(base).rps)
    }

    fn added_p50(&self) -> f64 {
        self.added_p50_of(Target::Gateway)
    }

    fn added_p99(&self) -> f64 {
        self.added_p99_of(Target::Gateway)
    }

    fn throughput_ratio(&self) -> f64 {
        self.rps_ratio(Target::Gateway, Target::Direct)
    }

    /// The ceiling: throughput of a hop that does nothing, over direct.
    fn forwarder_ratio(&self) -> f64 {
        self.rps_ratio(Target::Forwarder, Target::Direct)
    }

    /// What Rungate costs beyond the hop itself.
    fn gateway_forwarder_ratio(&self) -> f64 {
        self.rps_ratio(Target::Gateway, Target::Forwarder)
    }

    fn errors(&self) -> usize {
        self.summaries.iter().map(|s| s.errors).sum()
    }

    fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("concurrency".into(), json!(self.concurrency));
        for target in Target::ALL {
            out.insert(target.json_key().into(), self.of(target).to_json());
        }
        let figures = [
            ("added_p50_us", round1(self.added_p50())),
            ("added_p99_us", round1(self.added_p99())),
            ("throughput_ratio", round3(self.throughput_ratio())),
            ("forwarder_ratio", round3(self.forwarder_ratio())),
            (
                "gateway_forwarder_ratio",
                round3(self.gateway_forwarder_ratio()),
            ),
        ];
        for (key, value) in figures {
            out.insert(key.into(), json!(value));
        }
        for target in Target::BESIDE_PLAIN {
            let key = target.json_key();
            let figures = [
                ("added_p50_us", round1(self.added_p50_of(target))),
                ("added_p99_us", round1(self.added_p99_of(target))),
                ("overhead_p50_us", round1(self.overhead_p50_of(target))),
                ("overhead_p99_us", round1(self.overhead_p99_of(target))),
                (
                    "throughput_ratio",
                    round3(self.rps_ratio(target, Target::Gateway)),
                ),
            ];
            for (figure, value) in figures {
                out.insert(format!("{key}_{figure}"), json!(value));
            }
        }
        out.insert("first_error".into(), json!(self.first_error));
        Value::Object(out)
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
    pub checks: Vec<(String, u64, u64)>,
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
        self.latency.of(Target::Governed).ok > 0
            && self.latency.overhead_p99_of(Target::Governed)
                <= micros(TARGET_GOVERNED_OVERHEAD_P99)
    }

    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Rungate benchmark: client -> mock (direct) vs client -> bare hop -> mock (forwarder) vs \
             client -> rungate -> mock (gateway: no policy; governed: every policy rule set; \
             translated-*: OpenAI chat to another provider's format and back; failover: one 500, \
             then translated)"
        )?;
        for (what, value) in &self.setup {
            writeln!(out, "  {what:<13} {value}")?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{:<24} {:<20} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
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
            for target in Target::ALL {
                let s = scenario.of(target);
                writeln!(
                    out,
                    "{name:<24} {:<20} {:>6} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.0}",
                    target.name(),
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
        self.write_gateway(out)?;
        writeln!(out)?;
        self.write_governed(out)?;
        writeln!(out)?;
        self.write_beside_plain(out)?;
        writeln!(out)?;
        self.write_checks(out)
    }

    /// The plain gateway's figures against direct and against the bare hop, with their targets.
    fn write_gateway(&self, out: &mut impl Write) -> std::io::Result<()> {
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
            t.of(Target::Gateway).rps,
            t.of(Target::Direct).rps
        )?;
        writeln!(
            out,
            "forwarder ratio (c={})          = {:>8.3}      the ceiling: a bare hop, no governance ({:.0} / {:.0} req/s)",
            t.concurrency,
            t.forwarder_ratio(),
            t.of(Target::Forwarder).rps,
            t.of(Target::Direct).rps
        )?;
        writeln!(
            out,
            "gateway / forwarder (c={})      = {:>8.3}      what Rungate costs beyond the hop",
            t.concurrency,
            t.gateway_forwarder_ratio(),
        )
    }

    /// The governed figures: added latency beside the plain gateway's, what governance adds over
    /// the plain path (with its target), and throughput beside the plain gateway's.
    fn write_governed(&self, out: &mut impl Write) -> std::io::Result<()> {
        let l = &self.latency;
        let g = Target::Governed;
        let mut line = |label: &str, value: String| writeln!(out, "{label:<43} = {value}");
        line(
            "governed added p50 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (plain gateway {:.1} us)",
                l.added_p50_of(g),
                l.added_p50()
            ),
        )?;
        line(
            "governed added p99 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (plain gateway {:.1} us)",
                l.added_p99_of(g),
                l.added_p99()
            ),
        )?;
        line(
            "governed overhead p50 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   (governed {:.1} - gateway {:.1})",
                l.overhead_p50_of(g),
                micros(l.of(g).p50),
                micros(l.of(Target::Gateway).p50)
            ),
        )?;
        line(
            "governed overhead p99 (c=1, non-streaming)",
            format!(
                "{:>8.1} us   target <= {} us: {}   (governed {:.1} - gateway {:.1})",
                l.overhead_p99_of(g),
                micros(TARGET_GOVERNED_OVERHEAD_P99),
                verdict(self.governed_target_met()),
                micros(l.of(g).p99),
                micros(l.of(Target::Gateway).p99)
            ),
        )?;
        if let Some(s) = &self.streaming {
            line(
                "governed overhead p50 (c=1, streaming TTLB)",
                format!(
                    "{:>8.1} us   (governed added {:.1} us, plain gateway added {:.1} us)",
                    s.overhead_p50_of(g),
                    s.added_p50_of(g),
                    s.added_p50()
                ),
            )?;
            line(
                "governed overhead p99 (c=1, streaming TTLB)",
                format!(
                    "{:>8.1} us   (governed added {:.1} us, plain gateway added {:.1} us)",
                    s.overhead_p99_of(g),
                    s.added_p99_of(g),
                    s.added_p99()
                ),
            )?;
        }
        let t = &self.throughput;
        line(
            &format!("governed throughput (c={})", t.concurrency),
            format!(
                "{:>8.0} req/s   {:.3} x gateway ({:.0} req/s), {:.3} x direct",
                t.of(g).rps,
                t.rps_ratio(g, Target::Gateway),
                t.of(Target::Gateway).rps,
                t.rps_ratio(g, Target::Direct)
            ),
        )
    }

    /// Every gateway target beside the plain one, same run: added latency (over direct) and its
    /// ratio to the plain gateway's, the difference to the plain path, and throughput.
    fn write_beside_plain(&self, out: &mut impl Write) -> std::io::Result<()> {
        let (l, t) = (&self.latency, &self.throughput);
        writeln!(
            out,
            "beside the plain gateway, same run (added = target - direct; over plain = target - gateway; \
             x plain = ratio to the gateway's figure)"
        )?;
        writeln!(
            out,
            "{:<20} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10} {:>10} {:>9} {:>7}",
            "target (c=1)",
            "added p50",
            "added p99",
            "x plain",
            "over p50",
            "over p99",
            "TTLB +p50",
            "TTLB +p99",
            format!("req/s c={}", t.concurrency),
            "x plain"
        )?;
        for target in std::iter::once(Target::Gateway).chain(Target::BESIDE_PLAIN) {
            let (ttlb_p50, ttlb_p99) = self.streaming.as_ref().map_or((f64::NAN, f64::NAN), |s| {
                (s.added_p50_of(target), s.added_p99_of(target))
            });
            writeln!(
                out,
                "{:<20} {:>9.1} {:>9.1} {:>7.2} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>9.0} {:>7.3}",
                target.name(),
                l.added_p50_of(target),
                l.added_p99_of(target),
                ratio(l.added_p50_of(target), l.added_p50()),
                l.overhead_p50_of(target),
                l.overhead_p99_of(target),
                ttlb_p50,
                ttlb_p99,
                t.of(target).rps,
                t.rps_ratio(target, Target::Gateway)
            )?;
        }
        Ok(())
    }

    fn write_checks(&self, out: &mut impl Write) -> std::io::Result<()> {
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

    /// One gateway target's top-level figures beside the plain path.
    fn beside_plain_json(&self, target: Target) -> Value {
        let (l, t) = (&self.latency, &self.throughput);
        let mut out = json!({
            "added_p50_us": round1(l.added_p50_of(target)),
            "added_p99_us": round1(l.added_p99_of(target)),
            "added_p50_ratio_to_gateway": round3(ratio(l.added_p50_of(target), l.added_p50())),
            "added_p99_ratio_to_gateway": round3(ratio(l.added_p99_of(target), l.added_p99())),
            "overhead_p50_us": round1(l.overhead_p50_of(target)),
            "overhead_p99_us": round1(l.overhead_p99_of(target)),
            "rps": round1(t.of(target).rps),
            "throughput_ratio_to_gateway": round3(t.rps_ratio(target, Target::Gateway)),
            "throughput_ratio_to_direct": round3(t.rps_ratio(target, Target::Direct)),
        });
        if let Some(s) = &self.streaming {
            out["stream_added_p50_us"] = json!(round1(s.added_p50_of(target)));
            out["stream_added_p99_us"] = json!(round1(s.added_p99_of(target)));
        }
        out
    }

    pub fn to_json(&self) -> Value {
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
        let mut out = json!({
            "setup": setup,
            "scenarios": self.scenarios().map(Scenario::to_json).collect::<Vec<_>>(),
            "added_p50_us": round1(self.latency.added_p50()),
            "added_p99_us": round1(self.latency.added_p99()),
            "added_p99_target_us": micros(TARGET_ADDED_P99),
            "added_p99_target_met": self.latency_target_met(),
            "throughput_ratio": round3(self.throughput.throughput_ratio()),
            "throughput_ratio_target": TARGET_THROUGHPUT_RATIO,
            "throughput_ratio_target_met": self.throughput_target_met(),
            "forwarder_ratio": round3(self.throughput.forwarder_ratio()),
            "gateway_forwarder_ratio": round3(self.throughput.gateway_forwarder_ratio()),
            "errors": self.errors(),
            "checks": checks,
            "flagged": self.errors() > 0 || !self.checks_pass(),
        });
        for target in Target::BESIDE_PLAIN {
            out[target.json_key()] = self.beside_plain_json(target);
        }
        out["governed"]["overhead_p99_target_us"] = json!(micros(TARGET_GOVERNED_OVERHEAD_P99));
        out["governed"]["overhead_p99_target_met"] = json!(self.governed_target_met());
        out
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
