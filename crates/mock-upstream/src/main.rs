//! `mock-upstream`: the fake providers as a process, for the Python and JS SDK suites and the benchmark.
//!
//! The one line it prints once bound (`mock-upstream listening on http://HOST:PORT`) is the contract
//! with whoever started it: with `--port 0` it is the only way to learn the port. Requests are not
//! recorded, since nothing in another process could read them and a benchmark would grow the log forever.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use mock_upstream::{MockConfig, MockUpstream, Recording};
use tokio::net::TcpListener;

/// A fake OpenAI / Anthropic / Gemini server: deterministic echo replies, scripted through a "mock"
/// body field or, for every request, --script.
#[derive(Debug, Parser)]
#[command(name = "mock-upstream", version)]
struct Cli {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one (read it from the first line of stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Wait this long before the first byte of every response.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Wait this long between two streamed events.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Refuse requests that do not carry this API key.
    #[arg(long)]
    require_key: Option<String>,
    /// A default "mock" object (JSON) for every model call, e.g. '{"status":503}'; a request's own
    /// "mock" members win.
    #[arg(long, value_parser = parse_json)]
    script: Option<serde_json::Value>,
}

fn parse_json(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_str(text)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let config = MockConfig {
        latency: Duration::from_millis(cli.latency_ms),
        chunk_delay: Duration::from_millis(cli.chunk_delay_ms),
        require_key: cli.require_key,
        default_script: cli.script,
    };
    let listener = TcpListener::bind((cli.host.as_str(), cli.port)).await?;
    let server = MockUpstream::start_on(listener, config, Recording::Off).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "mock-upstream listening on {}", server.base_url())?;
        stdout.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
