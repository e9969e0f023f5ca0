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
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    agent: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    trigger: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    result: &'static str,
}

fn ms_buckets() -> Histogram {
    Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 25.0, 100.0, 250.0, 1000.0, 2500.0, 10000.0, 30000.0,
        120000.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    steps: Family<StepLabels, Counter>,
    cost_nanos: Family<StepLabels, Counter>,
    step_latency: Family<StepLabels, Histogram>,
    responses: Family<ResponseLabels, Counter>,
    response_latency: Family<ResponseLabels, Histogram>,
    overhead: Histogram,
    spend: Family<SpendLabels, Counter>,
    gates: Family<GateLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
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
        let response_latency =
            Family::<ResponseLabels, Histogram>::new_with_constructor(ms_buckets);
        let overhead = ms_buckets();
        let spend = Family::<SpendLabels, Counter>::default();
        let gates = Family::<GateLabels, Counter>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let open_runs = Gauge::default();
        registry.register(
            "response_latency_ms",
            "Time from request to response head, by route and status code",
            response_latency.clone(),
        );
        registry.register(
            "gateway_overhead_ms",
            "Time a call spends in the pipeline outside the upstream call (non-streamed answers)",
            overhead.clone(),
        );
        registry.register(
            "spend_usd_nanos",
            "Money settled, in nano-dollars, by agent and model",
            spend.clone(),
        );
        registry.register(
            "approval_gates",
            "Approval gate transitions, by trigger and the status entered",
            gates.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by result",
            deliveries.clone(),
        );
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
            response_latency,
            overhead,
            spend,
            gates,
            deliveries,
            open_runs,
        }
    }

    /// Money settled for an agent's call of a model (tool steps name the tool).
    pub fn record_spend(&self, agent: &str, model: &str, cost: UsdNanos) {
        if cost.0 <= 0 {
            return;
        }
        let labels = SpendLabels {
            agent: agent.to_owned(),
            model: model.to_owned(),
        };
        self.spend
            .get_or_create(&labels)
            .inc_by(u64::try_from(cost.0).unwrap_or(0));
    }

    pub fn record_overhead(&self, overhead: std::time::Duration) {
        self.overhead.observe(overhead.as_secs_f64() * 1e3);
    }

    pub fn record_gates(&self, trigger: &'static str, status: &'static str, count: usize) {
        self.gates
            .get_or_create(&GateLabels { trigger, status })
            .inc_by(count as u64);
    }

    /// `delivered`, `failed` (to be retried) or `dead`.
    pub fn record_delivery(&self, result: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { result })
            .inc();
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

    /// A proxied response, and how long it took to produce its head.
    pub fn record_response(&self, route: &'static str, status: u16, took: std::time::Duration) {
        let labels = ResponseLabels { route, status };
        self.responses.get_or_create(&labels).inc();
        self.response_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64() * 1e3);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
