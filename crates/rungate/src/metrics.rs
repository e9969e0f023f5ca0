//! What operators scrape at `GET /metrics`: request outcomes, step latency and money, in the
//! Prometheus text format. Counters are lock-free atomics, so recording costs nanoseconds on
//! the hot path; only the scrape takes the registry lock.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::money::UsdNanos;
use crate::run::StepStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    provider: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    route: String,
    status: String,
}

pub struct Metrics {
    registry: Registry,
    steps: Family<StepLabels, Counter>,
    cost_nanos: Family<StepLabels, Counter>,
    step_latency: Family<StepLabels, Histogram>,
    responses: Family<ResponseLabels, Counter>,
    pub open_runs: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rungate");
        let steps = Family::<StepLabels, Counter>::default();
        let cost_nanos = Family::<StepLabels, Counter>::default();
        let step_latency = Family::<StepLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                5.0, 25.0, 100.0, 250.0, 1000.0, 2500.0, 10000.0, 30000.0, 120000.0,
            ])
        });
        let responses = Family::<ResponseLabels, Counter>::default();
        let open_runs = Gauge::default();
        registry.register(
            "steps",
            "Steps recorded, by provider and status",
            steps.clone(),
        );
        registry.register(
            "cost_usd_nanos",
            "Money settled, in nano-dollars",
            cost_nanos.clone(),
        );
        registry.register(
            "step_latency_ms",
            "Upstream call latency in milliseconds",
            step_latency.clone(),
        );
        registry.register(
            "responses",
            "Proxy responses by route and status code",
            responses.clone(),
        );
        registry.register(
            "open_runs",
            "Runs currently open in this gateway",
            open_runs.clone(),
        );
        Metrics {
            registry,
            steps,
            cost_nanos,
            step_latency,
            responses,
            open_runs,
        }
    }

    pub fn record_step(&self, provider: &str, status: StepStatus, cost: UsdNanos, latency_ms: u64) {
        let status = match status {
            StepStatus::Success => "success",
            StepStatus::Error => "error",
            StepStatus::Timeout => "timeout",
            StepStatus::Blocked => "blocked",
        };
        let labels = StepLabels {
            provider: provider.to_owned(),
            status: status.to_owned(),
        };
        self.steps.get_or_create(&labels).inc();
        self.cost_nanos
            .get_or_create(&labels)
            .inc_by(u64::try_from(cost.0).unwrap_or(0));
        self.step_latency
            .get_or_create(&labels)
            .observe(latency_ms as f64);
    }

    pub fn record_response(&self, route: &'static str, status: u16) {
        let labels = ResponseLabels {
            route: route.to_owned(),
            status: status.to_string(),
        };
        self.responses.get_or_create(&labels).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
