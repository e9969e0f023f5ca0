//! Starts the system under test in this process: the mock provider on loopback, and a Rungate gateway
//! with a fresh SQLite database, one provider key pointing at the mock and one agent mapped to it.
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
use rungate::security::{TokenKind, generate_token, hash_token};
use rungate::store::{Agent, AgentStatus, KeyStatus, ProviderKeyRecord, RunFilter};
use tokio::net::TcpListener;

use crate::load::Target;

/// The provider key the mock insists on, so a forwarded call proves the gateway swapped credentials.
const PROVIDER_KEY: &str = "sk-mock-bench";
const KEY_ID: &str = "key_bench";
const AGENT_ID: &str = "agt_bench";

/// The running mock and gateway, and how to reach each.
pub struct Stack {
    pub mock: MockUpstream,
    pub gateway: AppState,
    pub direct: Target,
    pub via_gateway: Target,
    /// Holds the database and key file until the benchmark ends.
    data: tempfile::TempDir,
}

impl Stack {
    /// Starts everything; the database goes in a new temporary directory inside `data_dir`.
    pub async fn start(data_dir: Option<&Path>) -> Result<Stack> {
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
        let gateway = start_gateway(&data).await?;
        let gateway_addr = serve_gateway(&gateway).await?;
        let agent_token = provision(&gateway, &mock.base_url()).await?;
        Ok(Stack {
            direct: Target {
                addr: mock.addr(),
                authorization: Arc::from(format!("Bearer {PROVIDER_KEY}")),
            },
            via_gateway: Target {
                addr: gateway_addr,
                authorization: Arc::from(format!("Bearer {agent_token}")),
            },
            mock,
            gateway,
            data,
        })
    }

    /// Where the database lives, with its file system type when it can be told.
    pub fn data_dir(&self) -> String {
        let path = self.data.path();
        match file_system_of(path) {
            Some(kind) => format!("{} ({kind})", path.display()),
            None => path.display().to_string(),
        }
    }

    /// Steps the gateway recorded for the bench agent, summed over its runs.
    pub async fn recorded_steps(&self) -> Result<u64> {
        let filter = RunFilter {
            agent_id: Some(AGENT_ID.to_owned()),
            ..RunFilter::default()
        };
        let page = rungate::store::Page {
            limit: 1000,
            offset: 0,
        };
        let (runs, _total) = self.gateway.stores.runs.list_runs(&filter, page).await?;
        Ok(runs.iter().map(|run| run.steps_count).sum())
    }
}

async fn start_gateway(data: &tempfile::TempDir) -> Result<AppState> {
    let yaml = format!(
        "storage:\n  type: sqlite\n  path: {}\ndemo_provider: off\nlog_level: warn\n",
        data.path().join("bench.db").display()
    );
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

/// Inserts the provider key and the agent; returns the agent's bearer token.
async fn provision(gateway: &AppState, mock_base_url: &str) -> Result<String> {
    let now = rungate::run::now_ms();
    let key = ProviderKeyRecord {
        id: KEY_ID.to_owned(),
        provider: "openai".to_owned(),
        name: "bench-mock".to_owned(),
        encrypted_key: gateway.directory.master_key().encrypt(PROVIDER_KEY),
        key_suffix: rungate::security::mask_suffix(PROVIDER_KEY),
        base_url: Some(mock_base_url.to_owned()),
        status: KeyStatus::Active,
        created_at_ms: now,
        updated_at_ms: now,
    };
    gateway.stores.keys.create_key(&key).await?;
    let token = generate_token(TokenKind::Agent);
    let agent = Agent {
        id: AGENT_ID.to_owned(),
        name: "bench".to_owned(),
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(12).collect(),
        team: None,
        policy_id: None,
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
