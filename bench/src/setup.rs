//! Starts the system under test in this process: the mock provider on loopback, and a Rungate gateway
//! with a fresh SQLite database, one provider key pointing at the mock and two agents mapped to it:
//! a plain one without a policy, and a governed one whose policy sets every rule the pipeline checks
//! (allowed models, blocked tools, max steps, USD and token caps, rate limits) so loosely that none
//! ever refuses.
//!
//! Everything is provisioned through the stores, as the admin API would, so the measured path is the
//! production one: token lookup (cached after the first call), run resolution, policy check, forward
//! through the pooled upstream client, step + ledger + audit written to SQLite, response headers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use mock_upstream::{MockConfig, MockUpstream, Recording};
use rungate::app::AppState;
use rungate::budget::LedgerKind;
use rungate::policy::PolicyDocument;
use rungate::security::{TokenKind, generate_token, hash_token};
use rungate::store::{Agent, AgentStatus, KeyStatus, ProviderKeyRecord, RunFilter};
use tokio::net::TcpListener;

use crate::load::Target;

/// The provider key the mock insists on, so a forwarded call proves the gateway swapped credentials.
const PROVIDER_KEY: &str = "sk-mock-bench";
const KEY_ID: &str = "key_bench";
const AGENT_ID: &str = "agt_bench";
const GOVERNED_AGENT_ID: &str = "agt_bench_governed";
const POLICY_ID: &str = "pol_bench_governed";
const POLICY_NAME: &str = "bench-governed";

/// The governed agent's policy: every rule is set, so every rule is evaluated on every call, and
/// every limit is far out of reach, so none refuses. The caps make each call reserve a hold and
/// settle it (reservation, settlement and release ledger rows) instead of writing a settlement only.
pub fn governed_policy() -> serde_json::Value {
    serde_json::json!({
        "allowed_models": ["gpt-4o-mini"],
        "budget": {"hard_limit_usd": 1_000_000.0, "hard_limit_tokens": 100_000_000_000_u64},
        "rate_limits": {"max_requests_per_minute": 100_000_000, "max_tokens_per_minute": 100_000_000_000_u64},
        "max_steps": 1_000_000_000,
        "blocked_tools": ["delete_database"],
    })
}

/// Which of the two gateway agents.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Plain,
    Governed,
}

impl Who {
    fn agent_id(self) -> &'static str {
        match self {
            Who::Plain => AGENT_ID,
            Who::Governed => GOVERNED_AGENT_ID,
        }
    }
}

/// Ledger rows of one agent's runs, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerCounts {
    pub reservations: u64,
    pub settlements: u64,
    pub releases: u64,
}

/// The running mock and gateway, and how to reach each.
pub struct Stack {
    pub mock: MockUpstream,
    pub gateway: AppState,
    pub direct: Target,
    /// Through the bare forwarder (same server and client stacks as the gateway, no governance).
    pub forwarder: Target,
    pub via_gateway: Target,
    /// Through the same gateway, as the agent whose policy sets every rule.
    pub governed: Target,
    /// Holds the database and key file until the benchmark ends.
    data: tempfile::TempDir,
    storage: Storage,
}

/// Where the gateway keeps its data.
pub enum Storage {
    Sqlite,
    Postgres { url: String, schema: String },
}

impl Stack {
    /// Starts everything; the database goes in a new temporary directory inside `data_dir`, or
    /// in a fresh schema of the PostgreSQL at `postgres`.
    pub async fn start(data_dir: Option<&Path>, postgres: Option<&str>) -> Result<Stack> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let config = MockConfig {
            require_key: Some(PROVIDER_KEY.to_owned()),
            ..MockConfig::default()
        };
        // Recording off: the log would grow with every request and cost the mock a body copy.
        let mock = MockUpstream::start_on(listener, config, Recording::Off).await?;
        let data = match data_dir {
            Some(dir) => tempfile::tempdir_in(dir)
                .with_context(|| format!("temporary directory in {}", dir.display()))?,
            None => tempfile::tempdir()?,
        };
        let forwarder_addr = crate::forwarder::start(mock.base_url()).await?;
        let storage = match postgres {
            Some(url) => Storage::Postgres {
                url: url.to_owned(),
                schema: format!("bench_{}_{}", std::process::id(), rungate::run::now_ms()),
            },
            None => Storage::Sqlite,
        };
        let gateway = start_gateway(&data, &storage).await?;
        let gateway_addr = serve_gateway(&gateway).await?;
        let (agent_token, governed_token) = provision(&gateway, &mock.base_url()).await?;
        Ok(Stack {
            direct: Target {
                addr: mock.addr(),
                authorization: Arc::from(format!("Bearer {PROVIDER_KEY}")),
            },
            forwarder: Target {
                addr: forwarder_addr,
                authorization: Arc::from(format!("Bearer {PROVIDER_KEY}")),
            },
            via_gateway: Target {
                addr: gateway_addr,
                authorization: Arc::from(format!("Bearer {agent_token}")),
            },
            governed: Target {
                addr: gateway_addr,
                authorization: Arc::from(format!("Bearer {governed_token}")),
            },
            mock,
            gateway,
            data,
            storage,
        })
    }

    /// Drops the benchmark's PostgreSQL schema (SQLite's directory goes with the stack).
    pub async fn cleanup(&self) -> Result<()> {
        if let Storage::Postgres { url, schema } = &self.storage {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        Ok(())
    }

    /// Where the database lives, with its file system type when it can be told.
    pub fn data_dir(&self) -> String {
        if let Storage::Postgres { schema, .. } = &self.storage {
            return format!("PostgreSQL schema {schema}");
        }
        let path = self.data.path();
        match file_system_of(path) {
            Some(kind) => format!("SQLite (WAL) in {} ({kind})", path.display()),
            None => format!("SQLite (WAL) in {}", path.display()),
        }
    }

    /// Steps the gateway recorded for one agent, summed over its runs.
    pub async fn recorded_steps(&self, who: Who) -> Result<u64> {
        Ok(self
            .runs(who)
            .await?
            .iter()
            .map(|run| run.steps_count)
            .sum())
    }

    /// Ledger rows the gateway wrote for one agent's runs, by kind.
    pub async fn ledger_counts(&self, who: Who) -> Result<LedgerCounts> {
        let mut counts = LedgerCounts::default();
        for run in self.runs(who).await? {
            for entry in self.gateway.stores.runs.ledger(&run.id).await? {
                match entry.kind {
                    LedgerKind::Reservation => counts.reservations += 1,
                    LedgerKind::Settlement => counts.settlements += 1,
                    LedgerKind::Release => counts.releases += 1,
                    LedgerKind::ToolCost => {}
                }
            }
        }
        Ok(counts)
    }

    /// Every run of one agent (its auto-run, and any that replaced it after an idle close).
    async fn runs(&self, who: Who) -> Result<Vec<rungate::run::Run>> {
        let filter = RunFilter {
            agent_id: Some(who.agent_id().to_owned()),
            ..RunFilter::default()
        };
        let page = rungate::store::Page {
            limit: 1000,
            offset: 0,
        };
        let (runs, total) = self.gateway.stores.runs.list_runs(&filter, page).await?;
        anyhow::ensure!(
            runs.len() as u64 == total,
            "{total} runs for {}: more than one page",
            who.agent_id()
        );
        Ok(runs)
    }
}

async fn start_gateway(data: &tempfile::TempDir, storage: &Storage) -> Result<AppState> {
    let storage = match storage {
        Storage::Sqlite => format!(
            "storage:\n  type: sqlite\n  path: {}\n",
            data.path().join("bench.db").display()
        ),
        // A fixed key: with PostgreSQL the key file would land in the working directory.
        Storage::Postgres { url, schema } => format!(
            "storage:\n  type: postgres\n  url: {url}\n  schema: {schema}\n  max_connections: 32\nencryption_key: {}\n",
            "00".repeat(32)
        ),
    };
    let yaml = format!("{storage}demo_provider: off\nlog_level: warn\n");
    let config = rungate::config::Config::from_yaml(&yaml, &[])?;
    rungate::app::build(config)
        .await
        .context("build the gateway")
}

async fn serve_gateway(gateway: &AppState) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Runs until the process exits; the benchmark never shuts it down gracefully.
    let _server = tokio::spawn(rungate::app::serve(
        gateway.clone(),
        listener,
        std::future::pending(),
    ));
    Ok(addr)
}

/// Inserts the provider key, the governed policy and both agents; returns the bearer tokens of the
/// plain agent and of the governed one.
async fn provision(gateway: &AppState, mock_base_url: &str) -> Result<(String, String)> {
    let now = rungate::run::now_ms();
    let key = ProviderKeyRecord {
        id: KEY_ID.to_owned(),
        provider: "openai".to_owned(),
        name: "bench-mock".to_owned(),
        encrypted_key: gateway.directory.master_key().encrypt(PROVIDER_KEY),
        key_suffix: rungate::security::mask_suffix(PROVIDER_KEY),
        base_url: Some(mock_base_url.to_owned()),
        status: KeyStatus::Active,
        pricing: Default::default(),
        created_at_ms: now,
        updated_at_ms: now,
    };
    gateway.stores.keys.create_key(&key).await?;
    let document: PolicyDocument =
        serde_json::from_value(governed_policy()).context("the governed policy document")?;
    document
        .validate()
        .map_err(|(field, why)| anyhow::anyhow!("governed policy: {field} {why}"))?;
    gateway
        .stores
        .policies
        .create_policy(POLICY_ID, POLICY_NAME, &document)
        .await?;
    let plain = create_agent(gateway, AGENT_ID, "bench", None, now).await?;
    let governed = create_agent(
        gateway,
        GOVERNED_AGENT_ID,
        "bench-governed",
        Some(POLICY_ID),
        now,
    )
    .await?;
    Ok((plain, governed))
}

/// Inserts one agent using the bench provider key; returns its bearer token.
async fn create_agent(
    gateway: &AppState,
    id: &str,
    name: &str,
    policy_id: Option<&str>,
    now: i64,
) -> Result<String> {
    let token = generate_token(TokenKind::Agent);
    let agent = Agent {
        id: id.to_owned(),
        name: name.to_owned(),
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(12).collect(),
        team: None,
        policy_id: policy_id.map(str::to_owned),
        provider_keys: BTreeMap::from([("openai".to_owned(), KEY_ID.to_owned())]),
        status: AgentStatus::Active,
        metadata: serde_json::json!({}),
        created_at_ms: now,
        updated_at_ms: now,
    };
    gateway.stores.agents.create_agent(&agent).await?;
    Ok(token)
}

/// The type of the file system holding `path` (`ext4`, `tmpfs`, ...), from the longest matching
/// mount point in `/proc/mounts`; `None` where that file does not exist.
fn file_system_of(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let path = path.canonicalize().ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}
