//! Starts the system under test in this process: the mock provider on loopback, a second mock
//! that answers 500 to everything (the failover target's broken primary), and a Rungate gateway
//! with a fresh SQLite database, provider keys pointing at the mocks and one agent per gateway
//! target:
//!
//! - plain: no policy, OpenAI key;
//! - governed: a policy that sets every rule the pipeline checks (allowed models, blocked tools,
//!   max steps, USD and token caps, rate limits) so loosely that none ever refuses;
//! - translated-anthropic, translated-gemini: no policy, OpenAI, Anthropic and Gemini keys mapped;
//!   the model name in the body (`anthropic/...`, `gemini/...`) sends the call to another provider;
//! - failover: its OpenAI key points at the failing mock, and its policy's `routing` moves a
//!   failed `gpt-4o-mini` call to Anthropic's `claude-sonnet-4-5`.
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

use crate::cpus::ProxyRuntime;
use crate::load::Endpoint;
use crate::targets::{COUNT, Target};

/// The provider key the mocks insist on, so a forwarded call proves the gateway swapped credentials.
const PROVIDER_KEY: &str = "sk-mock-bench";
const KEY_ID: &str = "key_bench";
const ANTHROPIC_KEY_ID: &str = "key_bench_anthropic";
const GEMINI_KEY_ID: &str = "key_bench_gemini";
const FAILING_KEY_ID: &str = "key_bench_failing";
const POLICY_ID: &str = "pol_bench_governed";
const POLICY_NAME: &str = "bench-governed";
const FAILOVER_POLICY_ID: &str = "pol_bench_failover";
const FAILOVER_POLICY_NAME: &str = "bench-failover";

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

/// The failover agent's policy: a failed call goes on to Anthropic, under Anthropic's model name.
pub fn failover_policy() -> serde_json::Value {
    serde_json::json!({
        "routing": {
            "default_chain": ["anthropic"],
            "model_map": {"gpt-4o-mini": {"anthropic": "claude-sonnet-4-5"}},
        },
    })
}

/// The agent a gateway target calls as; `None` for the targets that skip the gateway.
fn agent_id(target: Target) -> Option<&'static str> {
    match target {
        Target::Direct | Target::Forwarder => None,
        Target::Gateway => Some("agt_bench"),
        Target::Governed => Some("agt_bench_governed"),
        Target::TranslatedAnthropic => Some("agt_bench_translated_anthropic"),
        Target::TranslatedGemini => Some("agt_bench_translated_gemini"),
        Target::Failover => Some("agt_bench_failover"),
    }
}

/// Ledger rows of one agent's runs, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerCounts {
    pub reservations: u64,
    pub settlements: u64,
    pub releases: u64,
}

/// The running mocks and gateway, and how to reach each target.
pub struct Stack {
    pub mock: MockUpstream,
    /// Answers 500 to every model call: the failover target's primary.
    pub failing_mock: MockUpstream,
    pub gateway: AppState,
    /// Indexed by [`Target::index`].
    endpoints: [Endpoint; COUNT],
    /// Holds the database and key file until the benchmark ends.
    data: tempfile::TempDir,
    storage: Storage,
}

/// Where the gateway keeps its data.
#[derive(Clone)]
pub enum Storage {
    Sqlite,
    Postgres { url: String, schema: String },
}

impl Stack {
    /// Starts everything; the database goes in a new temporary directory inside `data_dir`, or
    /// in a fresh schema of the PostgreSQL at `postgres`.
    ///
    /// With `proxy`, the forwarder and the gateway are started, served and provisioned on that
    /// runtime (`--pin`: their own CPUs), so every task and thread they start runs there.
    pub async fn start(
        data_dir: Option<&Path>,
        postgres: Option<&str>,
        proxy: Option<&ProxyRuntime>,
    ) -> Result<Stack> {
        let config = MockConfig {
            require_key: Some(PROVIDER_KEY.to_owned()),
            ..MockConfig::default()
        };
        let failing = MockConfig {
            default_script: Some(serde_json::json!({"status": 500})),
            ..config.clone()
        };
        // Recording off: the log would grow with every request and cost the mock a body copy.
        let mock = MockUpstream::start_on(
            TcpListener::bind("127.0.0.1:0").await?,
            config,
            Recording::Off,
        )
        .await?;
        let failing_mock = MockUpstream::start_on(
            TcpListener::bind("127.0.0.1:0").await?,
            failing,
            Recording::Off,
        )
        .await?;
        let data = match data_dir {
            Some(dir) => tempfile::tempdir_in(dir)
                .with_context(|| format!("temporary directory in {}", dir.display()))?,
            None => tempfile::tempdir()?,
        };
        let mock_url = mock.base_url();
        let forwarder_addr = on(proxy, move || crate::forwarder::start(mock_url)).await?;
        let storage = match postgres {
            Some(url) => Storage::Postgres {
                url: url.to_owned(),
                schema: format!("bench_{}_{}", std::process::id(), rungate::run::now_ms()),
            },
            None => Storage::Sqlite,
        };
        let (db_path, storage_copy) = (data.path().join("bench.db"), storage.clone());
        let (mock_url, failing_url) = (mock.base_url(), failing_mock.base_url());
        let (gateway, gateway_addr, tokens) = on(proxy, move || async move {
            let gateway = start_gateway(&db_path, &storage_copy).await?;
            let addr = serve_gateway(&gateway).await?;
            let tokens = provision(&gateway, &mock_url, &failing_url).await?;
            Ok((gateway, addr, tokens))
        })
        .await?;
        let bearer = |token: &str| Arc::from(format!("Bearer {token}"));
        let endpoints = Target::ALL.map(|target| match target {
            Target::Direct => Endpoint {
                addr: mock.addr(),
                authorization: bearer(PROVIDER_KEY),
            },
            Target::Forwarder => Endpoint {
                addr: forwarder_addr,
                authorization: bearer(PROVIDER_KEY),
            },
            _ => Endpoint {
                addr: gateway_addr,
                authorization: bearer(&tokens[target.index()]),
            },
        });
        Ok(Stack {
            endpoints,
            mock,
            failing_mock,
            gateway,
            data,
            storage,
        })
    }

    pub fn endpoint(&self, target: Target) -> &Endpoint {
        &self.endpoints[target.index()]
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
    pub async fn recorded_steps(&self, target: Target) -> Result<u64> {
        Ok(self
            .runs(target)
            .await?
            .iter()
            .map(|run| run.steps_count)
            .sum())
    }

    /// Ledger rows the gateway wrote for one agent's runs, by kind.
    pub async fn ledger_counts(&self, target: Target) -> Result<LedgerCounts> {
        let mut counts = LedgerCounts::default();
        for run in self.runs(target).await? {
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
    async fn runs(&self, target: Target) -> Result<Vec<rungate::run::Run>> {
        let agent_id = agent_id(target)
            .with_context(|| format!("{} calls no gateway agent", target.name()))?;
        let filter = RunFilter {
            agent_id: Some(agent_id.to_owned()),
            ..RunFilter::default()
        };
        let page = rungate::store::Page {
            limit: 1000,
            offset: 0,
        };
        let (runs, total) = self.gateway.stores.runs.list_runs(&filter, page).await?;
        anyhow::ensure!(
            runs.len() as u64 == total,
            "{total} runs for {agent_id}: more than one page"
        );
        Ok(runs)
    }
}

/// Runs the future `make` builds on the proxy runtime when there is one, here otherwise.
async fn on<T, F>(
    proxy: Option<&ProxyRuntime>,
    make: impl FnOnce() -> F + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>>,
{
    match proxy {
        Some(proxy) => proxy.run(make).await,
        None => make().await,
    }
}

async fn start_gateway(db_path: &Path, storage: &Storage) -> Result<AppState> {
    let storage = match storage {
        Storage::Sqlite => format!("storage:\n  type: sqlite\n  path: {}\n", db_path.display()),
        // A fixed key: with PostgreSQL the key file would land in the working directory.
        Storage::Postgres { url, schema } => format!(
            "storage:\n  type: postgres\n  url: {url}\n  schema: {schema}\n  max_connections: 32\nencryption_key: {}\n",
            "00".repeat(32)
        ),
    };
    // The breaker never opens: with the default (5 failures, then 30 s of skipping the key) the
    // failover target would time a skipped key, not the failed attempt it exists to measure.
    let yaml = format!(
        "{storage}demo_provider: off\nlog_level: warn\ncircuit_breaker:\n  failure_threshold: {}\n",
        u32::MAX
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

/// Inserts the provider keys, the policies and one agent per gateway target; returns the bearer
/// tokens, indexed by [`Target::index`] (empty for the targets that skip the gateway).
async fn provision(
    gateway: &AppState,
    mock_base_url: &str,
    failing_base_url: &str,
) -> Result<[String; COUNT]> {
    let now = rungate::run::now_ms();
    for (id, provider, name, base_url) in [
        (KEY_ID, "openai", "bench-mock", mock_base_url),
        (
            ANTHROPIC_KEY_ID,
            "anthropic",
            "bench-mock-anthropic",
            mock_base_url,
        ),
        (GEMINI_KEY_ID, "gemini", "bench-mock-gemini", mock_base_url),
        (FAILING_KEY_ID, "openai", "bench-failing", failing_base_url),
    ] {
        let key = ProviderKeyRecord {
            id: id.to_owned(),
            provider: provider.to_owned(),
            name: name.to_owned(),
            encrypted_key: gateway.directory.master_key().encrypt(PROVIDER_KEY),
            key_suffix: rungate::security::mask_suffix(PROVIDER_KEY),
            base_url: Some(base_url.to_owned()),
            status: KeyStatus::Active,
            pricing: Default::default(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        gateway.stores.keys.create_key(&key).await?;
    }
    create_policy(gateway, POLICY_ID, POLICY_NAME, governed_policy()).await?;
    create_policy(
        gateway,
        FAILOVER_POLICY_ID,
        FAILOVER_POLICY_NAME,
        failover_policy(),
    )
    .await?;
    let mut tokens: [String; COUNT] = Default::default();
    for target in Target::ALL {
        let Some(id) = agent_id(target) else {
            continue;
        };
        let (policy_id, keys) = match target {
            Target::Governed => (Some(POLICY_ID), vec![("openai", KEY_ID)]),
            Target::Failover => (
                Some(FAILOVER_POLICY_ID),
                vec![("openai", FAILING_KEY_ID), ("anthropic", ANTHROPIC_KEY_ID)],
            ),
            Target::TranslatedAnthropic | Target::TranslatedGemini => (
                None,
                vec![
                    ("openai", KEY_ID),
                    ("anthropic", ANTHROPIC_KEY_ID),
                    ("gemini", GEMINI_KEY_ID),
                ],
            ),
            Target::Direct | Target::Forwarder | Target::Gateway => {
                (None, vec![("openai", KEY_ID)])
            }
        };
        let agent = NewAgent {
            id,
            name: id.replace('_', "-"),
            policy_id,
            keys,
        };
        tokens[target.index()] = create_agent(gateway, agent, now).await?;
    }
    Ok(tokens)
}

async fn create_policy(
    gateway: &AppState,
    id: &str,
    name: &str,
    policy: serde_json::Value,
) -> Result<()> {
    let document: PolicyDocument =
        serde_json::from_value(policy).with_context(|| format!("the {name} policy document"))?;
    document
        .validate()
        .map_err(|(field, why)| anyhow::anyhow!("{name} policy: {field} {why}"))?;
    gateway
        .stores
        .policies
        .create_policy(id, name, &document)
        .await?;
    Ok(())
}

/// One agent to insert: its id, name, policy and `provider_keys` (provider → key id).
struct NewAgent<'a> {
    id: &'a str,
    name: String,
    policy_id: Option<&'a str>,
    keys: Vec<(&'a str, &'a str)>,
}

/// Inserts one agent; returns its bearer token.
async fn create_agent(gateway: &AppState, new: NewAgent<'_>, now: i64) -> Result<String> {
    let token = generate_token(TokenKind::Agent);
    let agent = Agent {
        id: new.id.to_owned(),
        name: new.name,
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(12).collect(),
        team: None,
        policy_id: new.policy_id.map(str::to_owned),
        provider_keys: new
            .keys
            .into_iter()
            .map(|(provider, key)| (provider.to_owned(), key.to_owned()))
            .collect::<BTreeMap<_, _>>(),
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
