//! `rungate-bench`: what Rungate costs in series, measured in one run.
//!
//! The mock provider (zero latency) and a real gateway (SQLite, runs and cost accounting on) are
//! started in this process; the same requests are sent to the mock directly and through the gateway,
//! and the difference is the gateway's price: added latency at concurrency 1, throughput ratio at
//! high concurrency. Direct and gateway phases alternate in rounds so that drift (CPU frequency, page
//! cache, the database growing) lands on both sides. See `bench/README.md` for how to read the output.

mod load; // connections, workers and per-request timing
mod report; // percentiles, ratios, targets; table and JSON output
mod setup; // the in-process mock and gateway, with a provisioned agent

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;

use load::{Conn, PhaseResult, Shape, Target};
use report::{Report, Scenario, Summary};
use setup::Stack;

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
    /// Direct and gateway phases alternate this many times per scenario.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Skip the streaming scenario.
    #[arg(long)]
    no_stream: bool,
    /// Directory for the gateway's SQLite database (a fresh temporary directory is made inside it);
    /// e.g. /dev/shm to take disk syncs out of the figures [default: the system temp dir].
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
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
    let stack = Stack::start(args.data_dir.as_deref()).await?;
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
    let mut gateway_calls = 0u64;
    for plan in &plans {
        progress(&format!(
            "{} c={}: {} warm-up + {} measured requests per target",
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
    let checks = vec![
        (
            "steps recorded by the gateway",
            stack.recorded_steps().await?,
            gateway_calls,
        ),
        (
            "requests answered by the mock",
            stack.mock.request_count() as u64,
            2 * gateway_calls,
        ),
    ];
    Ok(Report {
        setup: describe(args, high, &stack.data_dir()),
        latency,
        streaming,
        throughput,
        checks,
    })
}

/// Warms both targets up, then alternates them for `args.rounds` rounds.
async fn measure(stack: &Stack, plan: &Plan, args: &Args) -> Result<Scenario> {
    let mut direct_conns = open(&stack.direct, plan.concurrency).await?;
    let mut gateway_conns = open(&stack.via_gateway, plan.concurrency).await?;
    let mut direct = PhaseResult::default();
    let mut gateway = PhaseResult::default();
    for (target, conns, sink) in [
        (&stack.direct, &mut direct_conns, &mut direct),
        (&stack.via_gateway, &mut gateway_conns, &mut gateway),
    ] {
        let (warm, back) =
            load::run_phase(target, &plan.shape, std::mem::take(conns), args.warmup).await?;
        // Warm-up timings are dropped; its failures still count against the run.
        sink.errors = warm.errors;
        sink.first_error = warm.first_error;
        *conns = back;
    }
    for round in 0..args.rounds {
        let requests =
            plan.requests / args.rounds + usize::from(round < plan.requests % args.rounds);
        // ABBA order: neither side always goes first, so drift during the run lands on both.
        let gateway_first = round % 2 == 1;
        for is_gateway in [gateway_first, !gateway_first] {
            let (target, conns, sink) = if is_gateway {
                (&stack.via_gateway, &mut gateway_conns, &mut gateway)
            } else {
                (&stack.direct, &mut direct_conns, &mut direct)
            };
            let (result, back) =
                load::run_phase(target, &plan.shape, std::mem::take(conns), requests).await?;
            sink.absorb(result);
            *conns = back;
        }
    }
    let first_error = direct
        .first_error
        .take()
        .or_else(|| gateway.first_error.take());
    let direct_summary = Summary::of(&mut direct);
    let gateway_summary = Summary::of(&mut gateway);
    Ok(Scenario {
        name: plan.name,
        concurrency: plan.concurrency,
        direct: direct_summary,
        gateway: gateway_summary,
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
            "gateway",
            format!(
                "SQLite (WAL) in {data_dir}; one agent, auto-run; every call records step + ledger + audit"
            ),
        ),
        (
            "requests",
            format!(
                "{} warm-up + {} measured per target at c=1; {} at c={}; {} interleaved rounds (ABBA)",
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
