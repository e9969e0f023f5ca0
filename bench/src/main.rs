//! `rungate-bench`: what Rungate costs in series, measured in one run.
//!
//! The mock provider (zero latency) and a real gateway (SQLite, runs and cost accounting on) are
//! started in this process; the same requests are sent to the mock directly, through a bare
//! forwarder (the cost of any HTTP hop in series), through the gateway as an agent without a policy
//! (plain), as an agent whose policy sets every rule (governed), as agents whose model names
//! another provider so that the gateway translates the call and its answer (translated-anthropic,
//! translated-gemini), and as an agent whose OpenAI key always fails and whose routing fails over
//! to Anthropic (failover). The differences are the gateway's price: added latency at
//! concurrency 1, throughput ratio at high concurrency (against direct, and against the bare hop),
//! and what governance, translation and a failed attempt add on top of the plain path. The targets
//! take turns in rounds so that drift (CPU frequency, page cache, the database growing) lands on
//! all of them. See `bench/README.md` for how to read the output.

mod cpus; // --pin: load generator and mocks on one half of the CPUs, proxies on the other
mod forwarder; // the bare axum + reqwest hop: the ceiling for any proxy on these cores
mod load; // connections, workers and per-request timing
mod report; // percentiles, ratios, targets; table and JSON output
mod setup; // the in-process mocks and gateway, with one provisioned agent per gateway target
mod targets; // what each target sends and must answer: plain, governed, translated, failover

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

/// The same allocator as the `rungate` binary, so the in-process gateway is measured as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use load::{Conn, Endpoint, PhaseResult, Shape};
use report::{Report, Scenario, Summary};
use setup::Stack;
use targets::{COUNT, Target};

/// Added latency and throughput of the Rungate gateway against the in-process mock provider.
#[derive(Parser, Debug)]
#[command(name = "rungate-bench")]
struct Args {
    /// Measured requests per target at concurrency 1 (non-streaming, and streaming).
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Measured requests per target at high concurrency [default: 4 x --requests].
    #[arg(long)]
    requests_high: Option<usize>,
    /// Concurrent connections for the throughput scenario.
    #[arg(long, default_value_t = 64)]
    concurrency_high: usize,
    /// Unmeasured requests per target before each scenario.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// The targets' phases take turns this many times per scenario.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Skip the streaming scenario.
    #[arg(long)]
    no_stream: bool,
    /// Directory for the gateway's SQLite database (a fresh temporary directory is made inside it);
    /// e.g. /dev/shm to take disk syncs out of the figures [default: the system temp dir].
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Keep the gateway's data in a fresh schema of this PostgreSQL instead of SQLite (the
    /// schema is dropped at the end), e.g. postgres://postgres@127.0.0.1:5432/test.
    #[arg(long)]
    postgres: Option<String>,
    /// Run the load generator and the mocks on the first half of the CPUs and the forwarder and
    /// gateway on the second half (Linux), instead of sharing every core: the throughput ratio
    /// then measures a proxy on cores of its own, as deployed.
    #[arg(long)]
    pin: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(
        args.concurrency_high > 0,
        "--concurrency-high must be at least 1"
    );
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let split = args.pin.then(cpus::Split::halves).transpose()?;
    let (runtime, proxy_runtime) = match &split {
        Some(split) => {
            // `block_on` polls the benchmark on this thread: it belongs to the load half.
            cpus::pin_current_thread(&split.load)?;
            (
                cpus::pinned_runtime("bench-load", &split.load)?,
                Some(cpus::ProxyRuntime::start(&split.proxy)?),
            )
        }
        None => (
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?,
            None,
        ),
    };
    let report = runtime.block_on(run(&args, split.as_ref(), proxy_runtime.as_ref()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?;
    } else {
        report.write_table(&mut out)?;
    }
    out.flush()?;
    Ok(if report.errors() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One scenario's request shape and concurrency.
struct Plan {
    name: &'static str,
    stream: bool,
    concurrency: usize,
    requests: usize,
}

async fn run(
    args: &Args,
    split: Option<&cpus::Split>,
    proxy: Option<&cpus::ProxyRuntime>,
) -> Result<Report> {
    let stack = Stack::start(args.data_dir.as_deref(), args.postgres.as_deref(), proxy).await?;
    let high = args
        .requests_high
        .unwrap_or(args.requests.saturating_mul(4));
    let mut plans = vec![Plan {
        name: "chat",
        stream: false,
        concurrency: 1,
        requests: args.requests,
    }];
    if !args.no_stream {
        plans.push(Plan {
            name: "chat stream TTLB",
            stream: true,
            concurrency: 1,
            requests: args.requests,
        });
    }
    plans.push(Plan {
        name: "chat",
        stream: false,
        concurrency: args.concurrency_high,
        requests: high,
    });
    // Before anything is timed: every target answers as its path must (translated, failed over).
    for target in Target::ALL {
        for stream in [false, true] {
            check_target(&stack, target, stream).await?;
        }
    }
    // Calls sent to each target (warm-up and the checks above included).
    let mut calls = 2u64;
    let mut scenarios = Vec::with_capacity(plans.len());
    for plan in &plans {
        progress(&format!(
            "{} c={}: {} warm-up + {} measured requests per target ({})",
            plan.name,
            plan.concurrency,
            args.warmup,
            plan.requests,
            Target::ALL.map(Target::name).join(", ")
        ));
        scenarios.push(measure(&stack, plan, args).await?);
        calls += (args.warmup + plan.requests) as u64;
    }
    let throughput = scenarios
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no scenario"))?;
    let streaming = (!args.no_stream).then(|| scenarios.pop()).flatten();
    let latency = scenarios
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no scenario"))?;
    let failed = |target: Target| -> u64 {
        [Some(&latency), streaming.as_ref(), Some(&throughput)]
            .into_iter()
            .flatten()
            .map(|s| s.summaries[target.index()].errors as u64)
            .sum()
    };
    let checks = checks(&stack, calls, failed).await?;
    stack.cleanup().await?;
    Ok(Report {
        setup: describe(args, split, high, &stack.data_dir()),
        latency,
        streaming,
        throughput,
        checks,
    })
}

/// One untimed call to `target`; fails loudly unless its answer is what its path must produce.
async fn check_target(stack: &Stack, target: Target, stream: bool) -> Result<()> {
    let mode = if stream { "streaming" } else { "non-streaming" };
    let (headers, body) = load::fetch(stack.endpoint(target), targets::chat_body(target, stream))
        .await
        .with_context(|| format!("{} ({mode}) check call", target.name()))?;
    targets::check_answer(target, stream, &headers, &body).with_context(|| {
        format!(
            "{} ({mode}) did not answer as its path must: {}",
            target.name(),
            String::from_utf8_lossy(&body[..body.len().min(600)])
        )
    })
}

/// Cross-checks, all calls included: what each agent's runs recorded, and what the mocks answered.
/// `failed` is the number of failed requests of a target.
async fn checks(
    stack: &Stack,
    calls: u64,
    failed: impl Fn(Target) -> u64,
) -> Result<Vec<(String, u64, u64)>> {
    let governed_ledger = stack.ledger_counts(Target::Governed).await?;
    let plain_ledger = stack.ledger_counts(Target::Gateway).await?;
    let mut checks = Vec::new();
    // A refusal (403, 429) would mean the policy was mis-set and the governed figures would time
    // refusals; a failed failover, that the routing was.
    for target in [Target::Governed, Target::Failover] {
        checks.push((
            format!("{} calls answered 200", target.name()),
            calls.saturating_sub(failed(target)),
            calls,
        ));
    }
    for target in Target::ALL.into_iter().filter(|t| t.through_gateway()) {
        let what = match target.steps_per_call() {
            1 => format!("steps recorded, {} agent", target.name()),
            n => format!(
                "steps recorded, {} agent ({n} per call: the failed attempt is a step)",
                target.name()
            ),
        };
        checks.push((
            what,
            stack.recorded_steps(target).await?,
            calls * target.steps_per_call(),
        ));
    }
    checks.extend([
        (
            "holds reserved, governed agent (ledger)".to_owned(),
            governed_ledger.reservations,
            calls,
        ),
        (
            "holds released, governed agent (ledger)".to_owned(),
            governed_ledger.releases,
            calls,
        ),
        (
            "holds reserved, plain agent (ledger; no caps)".to_owned(),
            plain_ledger.reservations,
            0,
        ),
        (
            "requests answered by the mock (every target's calls)".to_owned(),
            stack.mock.request_count() as u64,
            COUNT as u64 * calls,
        ),
        (
            "requests answered 500 by the failing mock (failover calls)".to_owned(),
            stack.failing_mock.request_count() as u64,
            calls,
        ),
    ]);
    Ok(checks)
}

/// Warms every target up, then runs them in turn for `args.rounds` rounds.
async fn measure(stack: &Stack, plan: &Plan, args: &Args) -> Result<Scenario> {
    let shapes = Target::ALL.map(|target| Shape {
        body: targets::chat_body(target, plan.stream),
        stream: plan.stream,
    });
    let mut conns: [Vec<Conn>; COUNT] = Default::default();
    for (target, slot) in Target::ALL.iter().zip(&mut conns) {
        *slot = open(stack.endpoint(*target), plan.concurrency).await?;
    }
    let mut results: [PhaseResult; COUNT] = Default::default();
    for target in Target::ALL {
        let i = target.index();
        let (warm, back) = load::run_phase(
            stack.endpoint(target),
            &shapes[i],
            std::mem::take(&mut conns[i]),
            args.warmup,
        )
        .await?;
        // Warm-up timings are dropped; its failures still count against the run.
        results[i].errors = warm.errors;
        results[i].first_error = warm.first_error;
        conns[i] = back;
    }
    for round in 0..args.rounds {
        let requests =
            plan.requests / args.rounds + usize::from(round < plan.requests % args.rounds);
        // ABC...CBA order: every target's mean position is the same, and the gateway targets
        // take turns going first, so drift during the run lands on all of them.
        let mut order = Target::ALL;
        if round % 2 == 1 {
            order.reverse();
        }
        for target in order {
            let i = target.index();
            let (result, back) = load::run_phase(
                stack.endpoint(target),
                &shapes[i],
                std::mem::take(&mut conns[i]),
                requests,
            )
            .await?;
            results[i].absorb(result);
            conns[i] = back;
        }
    }
    let first_error = Target::ALL
        .iter()
        .zip(&mut results)
        .find_map(|(target, result)| {
            result
                .first_error
                .take()
                .map(|error| format!("{}: {error}", target.name()))
        });
    Ok(Scenario {
        name: plan.name,
        concurrency: plan.concurrency,
        summaries: results.each_mut().map(Summary::of),
        first_error,
    })
}

async fn open(endpoint: &Endpoint, count: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        conns.push(Conn::open(endpoint.addr).await?);
    }
    Ok(conns)
}

fn describe(
    args: &Args,
    split: Option<&cpus::Split>,
    high: usize,
    data_dir: &str,
) -> Vec<(&'static str, String)> {
    // Pinned, this thread sees only the load half.
    let cpus = split.map_or_else(
        || std::thread::available_parallelism().map_or(0, usize::from),
        |split| split.load.len() + split.proxy.len(),
    );
    let model = cpu_model().map(|m| format!(" ({m})")).unwrap_or_default();
    let machine = match split {
        Some(split) => format!(
            "{cpus} logical CPU(s){model}, pinned (--pin): load generator and mocks on CPU(s) {:?} \
             ({} tokio worker(s)), forwarder and gateway on CPU(s) {:?} ({} worker(s), plus SQLite \
             threads)",
            split.load,
            split.load.len(),
            split.proxy,
            split.proxy.len()
        ),
        None => format!(
            "{cpus} logical CPU(s){model}; load generator, gateway and mock share them (one tokio \
             runtime, {cpus} workers, plus SQLite threads)"
        ),
    };
    let build = if cfg!(debug_assertions) {
        "DEBUG build: figures are meaningless, use --release"
    } else {
        "release"
    };
    vec![
        ("machine", machine),
        ("build", build.to_owned()),
        (
            "upstream",
            "in-process mock-upstream, zero latency, loopback HTTP/1.1 keep-alive".to_owned(),
        ),
        (
            "forwarder",
            "bare axum + reqwest hop to the mock, nothing else: the ceiling for any in-series proxy \
             on these cores"
                .to_owned(),
        ),
        (
            "gateway",
            format!(
                "{data_dir}; auto-runs; every call records step + ledger + audit"
            ),
        ),
        (
            "plain",
            "gateway target: agent without a policy (one settlement ledger row per call)"
                .to_owned(),
        ),
        (
            "governed",
            format!(
                "governed target: same gateway, agent with policy {}; every rule evaluated, none \
                 refuses; caps make each call reserve + settle + release a hold",
                setup::governed_policy()
            ),
        ),
        (
            "translated",
            "translated-anthropic / translated-gemini targets: agent without a policy sends the \
             same OpenAI chat body for anthropic/claude-sonnet-4-5 / gemini/gemini-2.5-flash; the \
             gateway translates it to Anthropic messages / Gemini generateContent and the answer \
             (and stream) back"
                .to_owned(),
        ),
        (
            "failover",
            format!(
                "failover target: gpt-4o-mini to an OpenAI key whose mock answers 500, policy {}; \
                 one failed attempt (its own step), then translated to Anthropic; circuit breaker \
                 kept closed so every call pays the failed attempt",
                setup::failover_policy()
            ),
        ),
        (
            "requests",
            format!(
                "{} warm-up + {} measured per target at c=1; {} at c={}; {} interleaved rounds (targets forwards, then backwards)",
                args.warmup, args.requests, high, args.concurrency_high, args.rounds
            ),
        ),
        (
            "latency",
            "from sending the request to the last body byte, one keep-alive connection per worker"
                .to_owned(),
        ),
    ]
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn progress(message: &str) {
    eprintln!("rungate-bench: {message}");
}
