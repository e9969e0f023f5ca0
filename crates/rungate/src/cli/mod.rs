//! The `rungate` command line: `start` runs the gateway; `migrate` and `db` work on the database
//! directly; the other commands are for operators and talk to a running gateway's admin API over
//! HTTP (SPEC §8), one file per noun. An
//! operator command fetches JSON, then renders it as a table (or prints it raw with `--json`);
//! rendering is pure so it is tested without a gateway.

mod agents;
mod approvals;
mod audit;
mod client;
mod db;
mod keys;
mod policies;
mod prices;
mod runs;
mod table;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use client::{AdminClient, ApiFailure};

#[derive(Debug, Parser)]
#[command(name = "rungate", version, about = "Governance proxy for AI agents")]
pub struct Cli {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

/// Where the operator commands find the gateway and how they authenticate (unused by `start`).
#[derive(Debug, Args)]
struct Remote {
    /// The gateway's base URL.
    #[arg(
        long,
        global = true,
        env = "RUNGATE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// An admin token (rg_adm_...); default: the file ./rungate.admin-token that `rungate start`
    /// writes on first boot.
    #[arg(
        long,
        global = true,
        env = "RUNGATE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (embedded SQLite and the demo provider when no config is given).
    Start {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Bring the configured storage's schema up to date (as `start` would) and report it.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The database itself: copy (a SQLite database into PostgreSQL).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Agents: create (prints the token once), list, disable, enable, rotate-key.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Provider API keys: add, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Runs: list, show (with steps), stop.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Policies: create from a JSON/YAML file, list.
    #[command(subcommand)]
    Policies(policies::PoliciesCommand),
    /// Approval requests: list, approve, reject.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// A run's audit chain: verify, export.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The price table: import LiteLLM's price map, show the table in use.
    #[command(subcommand)]
    Prices(prices::PricesCommand),
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
    let command = match cli.command {
        Command::Start { config } => {
            return match runtime.block_on(start(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("rungate: {err:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Migrate { config } => return local(runtime.block_on(db::migrate(config))),
        Command::Db(c) => return local(runtime.block_on(db::run(c))),
        Command::Agents(c) => Operation::Agents(c),
        Command::Keys(c) => Operation::Keys(c),
        Command::Runs(c) => Operation::Runs(c),
        Command::Policies(c) => Operation::Policies(c),
        Command::Approvals(c) => Operation::Approvals(c),
        Command::Audit(c) => Operation::Audit(c),
        Command::Prices(c) => Operation::Prices(c),
    };
    match runtime.block_on(operate(cli.remote, command)) {
        Ok(output) => print_output(&output),
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = err.downcast_ref::<ApiFailure>().and_then(ApiFailure::hint) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The outcome of a command that works on the database, not through the admin API.
fn local(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(output) => print_output(&output),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_output(output: &str) -> ExitCode {
    match write_stdout(output) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`rungate runs list | head`) is not worth a message.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write the output: {err}");
            ExitCode::FAILURE
        }
    }
}

/// An operator command, once `start` is ruled out.
enum Operation {
    Agents(agents::AgentsCommand),
    Keys(keys::KeysCommand),
    Runs(runs::RunsCommand),
    Policies(policies::PoliciesCommand),
    Approvals(approvals::ApprovalsCommand),
    Audit(audit::AuditCommand),
    Prices(prices::PricesCommand),
}

/// What an operator command needs: the client and whether to print raw JSON.
pub struct Ctx {
    client: AdminClient,
    json: bool,
}

impl Ctx {
    /// The API's JSON, pretty-printed, with `--json`; else `render`'s text.
    fn show(&self, body: &Value, render: impl FnOnce(&Value) -> String) -> String {
        if self.json {
            let mut text = serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string());
            text.push('\n');
            text
        } else {
            render(body)
        }
    }
}

/// Runs one operator command and returns what to print.
async fn operate(remote: Remote, operation: Operation) -> anyhow::Result<String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let token = client::resolve_token(remote.token, &cwd)?;
    let ctx = Ctx {
        client: AdminClient::new(&remote.url, token)?,
        json: remote.json,
    };
    match operation {
        Operation::Agents(c) => agents::run(&ctx, c).await,
        Operation::Keys(c) => keys::run(&ctx, c).await,
        Operation::Runs(c) => runs::run(&ctx, c).await,
        Operation::Policies(c) => policies::run(&ctx, c).await,
        Operation::Approvals(c) => approvals::run(&ctx, c).await,
        Operation::Audit(c) => audit::run(&ctx, c).await,
        Operation::Prices(c) => prices::run(&ctx, c).await,
    }
}

/// `limit` / `offset` query pairs of list endpoints, when given.
fn paging(limit: Option<u32>, offset: Option<u32>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(offset) = offset {
        query.push(("offset", offset.to_string()));
    }
    query
}

fn write_stdout(output: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()
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
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "rungate listening");
    if crate::api::dashboard::built() {
        tracing::info!(url = %format!("http://{local}/"), "dashboard: sign in with the admin token or RUNGATE_DASHBOARD_PASSWORD");
    }
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
