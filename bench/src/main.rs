//! `rungate-bench`: what Rungate costs in series, measured in one run.
//!
//! The mock provider (zero latency) and a real gateway (SQLite, runs and cost accounting on) are
//! started in this process; the same requests are sent to the mock directly, through a bare
//! forwarder (the cost of any HTTP hop in series), through the gateway as an agent without a policy
//! (plain), and through the same gateway as an agent whose policy sets every rule (governed). The
//! differences are the gateway's price: added latency at concurrency 1, throughput ratio at high
//! concurrency (against direct, and against the bare hop), and what governance adds on top of the
//! plain path. The four targets take turns in rounds so that drift (CPU frequency, page cache, the database growing)
//! lands on all of them. See `bench/README.md` for how to read the output.

mod forwarder; // the bare axum + reqwest hop: the ceiling for any proxy on these cores
mod load; // connections, workers and per-request timing
mod report; // percentiles, ratios, targets; table and JSON output
mod setup; // the in-process mock and gateway, with a provisioned agent

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;

/// The same allocator as the `rungate` binary, so the in-process gateway is measured as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use load::{Conn, PhaseResult, Shape, Target};
use report::{Report, Scenario, Summary};
use setup::{Stack, Who};

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
    /// Direct, gateway and governed phases take turns this many times per scenario.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
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
    shape: Shape,
    concurrency: usize,
    requests: usize,
}

async fn run(args: &Args) -> Result<Report> {
    let stack = Stack::start(args.data_dir.as_deref(), args.postgres.as_deref()).await?;
    let high = args
        .requests_high
        .unwrap_or(args.requests.saturating_mul(4));
    let mut plans = vec![Plan {
        name: "chat",
        shape: chat(false),
        concurrency: 1,
        requests: args.requests,
    }];
    if !args.no_stream {
        plans.push(Plan {
            name: "chat stream TTLB",
            shape: chat(true),
            concurrency: 1,
            requests: args.requests,
        });
    }
    plans.push(Plan {
        name: "chat",
        shape: chat(false),
        concurrency: args.concurrency_high,
        requests: high,
    });
    let mut scenarios = Vec::with_capacity(plans.len());
    // Calls sent through the gateway per agent (plain and governed alike), warm-up included.
    let mut gateway_calls = 0u64;
    for plan in &plans {
        progress(&format!(
            "{} c={}: {} warm-up + {} measured requests per target (direct, forwarder, gateway, governed)",
            plan.name, plan.concurrency, args.warmup, plan.requests
        ));
        scenarios.push(measure(&stack, plan, args).await?);
        gateway_calls += (args.warmup + plan.requests) as u64;
    }
    let throughput = scenarios
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no scenario"))?;
    let streaming = (!args.no_stream).then(|| scenarios.pop()).flatten();
    let latency = scenarios
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no scenario"))?;
    // Every governed call must have been answered 200: a refusal (403, 429) means the policy was
    // mis-set and the governed figures would time refusals, not governed calls.
    let governed_failed: u64 = [Some(&latency), streaming.as_ref(), Some(&throughput)]
        .into_iter()
        .flatten()
        .map(|s| s.governed.errors as u64)
        .sum();
    let governed_ledger = stack.ledger_counts(Who::Governed).await?;
    let plain_ledger = stack.ledger_counts(Who::Plain).await?;
    let checks = vec![
        (
            "governed calls answered 200",
            gateway_calls.saturating_sub(governed_failed),
            gateway_calls,
        ),
        (
            "steps recorded, plain agent",
            stack.recorded_steps(Who::Plain).await?,
            gateway_calls,
        ),
        (
            "steps recorded, governed agent",
            stack.recorded_steps(Who::Governed).await?,
            gateway_calls,
        ),
        (
            "holds reserved, governed agent (ledger)",
            governed_ledger.reservations,
            gateway_calls,
        ),
        (
            "holds released, governed agent (ledger)",
            governed_ledger.releases,
            gateway_calls,
        ),
        (
            "holds reserved, plain agent (ledger; no caps)",
            plain_ledger.reservations,
            0,
        ),
        (
            "requests answered by the mock",
            stack.mock.request_count() as u64,
            TARGETS as u64 * gateway_calls,
        ),
    ];
    stack.cleanup().await?;
    Ok(Report {
        setup: describe(args, high, &stack.data_dir()),
        latency,
        streaming,
        throughput,
        checks,
    })
}

/// The targets of every scenario, in the order of odd rounds (even rounds run it backwards).
const TARGETS: usize = 4;

/// Warms every target up, then runs them in turn for `args.rounds` rounds.
async fn measure(stack: &Stack, plan: &Plan, args: &Args) -> Result<Scenario> {
    let targets: [(&str, &Target); TARGETS] = [
        ("direct", &stack.direct),
        ("forwarder", &stack.forwarder),
        ("gateway", &stack.via_gateway),
        ("governed", &stack.governed),
    ];
    let mut conns: [Vec<Conn>; TARGETS] = Default::default();
    for ((_, target), slot) in targets.iter().zip(&mut conns) {
        *slot = open(target, plan.concurrency).await?;
    }
    let mut results: [PhaseResult; TARGETS] = Default::default();
    for (i, (_, target)) in targets.iter().enumerate() {
        let (warm, back) = load::run_phase(
            target,
            &plan.shape,
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
        // ABCD DCBA order: every target's mean position is the same, and plain and governed
        // gateway take turns going first, so drift during the run lands on all of them.
        let mut order: [usize; TARGETS] = [0, 1, 2, 3];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (result, back) = load::run_phase(
                targets[i].1,
                &plan.shape,
                std::mem::take(&mut conns[i]),
                requests,
            )
            .await?;
            results[i].absorb(result);
            conns[i] = back;
        }
    }
    let first_error = targets
        .iter()
        .zip(&mut results)
        .find_map(|((name, _), result)| {
            result
                .first_error
                .take()
                .map(|error| format!("{name}: {error}"))
        });
    let [direct, forwarder, gateway, governed] = &mut results;
    Ok(Scenario {
        name: plan.name,
        concurrency: plan.concurrency,
        direct: Summary::of(direct),
        forwarder: Summary::of(forwarder),
        gateway: Summary::of(gateway),
        governed: Summary::of(governed),
        first_error,
    })
}

async fn open(target: &Target, count: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        conns.push(Conn::open(target.addr).await?);
    }
    Ok(conns)
}

/// The small request body: one short user message to gpt-4o-mini.
fn chat(stream: bool) -> Shape {
    let mut body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello in one word."}],
    });
    if stream {
        body["stream"] = serde_json::Value::Bool(true);
    }
    Shape {
        body: Bytes::from(body.to_string()),
        stream,
    }
}

fn describe(args: &Args, high: usize, data_dir: &str) -> Vec<(&'static str, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let build = if cfg!(debug_assertions) {
        "DEBUG build: figures are meaningless, use --release"
    } else {
        "release"
    };
    vec![
        (
            "machine",
            format!(
                "{cpus} logical CPU(s){}; load generator, gateway and mock share them \
                 (one tokio runtime, {cpus} workers, plus SQLite threads)",
                cpu_model().map(|m| format!(" ({m})")).unwrap_or_default()
            ),
        ),
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
            "requests",
            format!(
                "{} warm-up + {} measured per target at c=1; {} at c={}; {} interleaved rounds (ABCD DCBA)",
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
