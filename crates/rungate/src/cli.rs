//! The `rungate` command line: `start` runs the gateway; the other commands are for operators
//! and talk to a running gateway's admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rungate", version, about = "Governance proxy for AI agents")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (embedded SQLite and the demo provider when no config is given).
    Start {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rungate: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Start { config } => start(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rungate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = crate::config::Config::load(config_path.as_deref())?;
    init_tracing(&config.log_level);
    let addr = config.listen_addr();
    let gw = crate::app::build(config).await?;
    if let Some(file) = crate::app::bootstrap_admin_token(&gw).await? {
        tracing::warn!(path = %file.display(), "created an admin token with every scope; the CLI reads it from this file");
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "rungate listening");
    crate::app::serve(gw, listener, shutdown_signal()).await?;
    Ok(())
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("rungate={level},tower_http=warn,{level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
