//! Builds the shared [`Gateway`] from a [`Config`] and serves it: storage is opened and
//! migrated, the master key loaded or generated, the demo provider started when it may be
//! needed, a first admin token issued on an empty database, the idle sweeper started. On
//! shutdown the listener stops accepting, in-flight requests finish, and the tracked tasks
//! (stream settlements) are awaited so no step is lost to a graceful stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::config::{Config, DemoProvider, StorageConfig};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::providers::Upstream;
use crate::providers::health::Breakers;
use crate::providers::pricing::{PriceTable, Prices};
use crate::proxy::directory::Directory;
use crate::proxy::live::LiveRuns;
use crate::proxy::shared::SharedBooks;
use crate::security::{KeyError, MasterKey, TokenKind, generate_token, hash_token};
use crate::store::postgres::{PgStore, PgTarget};
use crate::store::sqlite::SqliteStore;
use crate::store::{AdminToken, Scope, StoreError, Stores};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("master key: {0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("upstream client: {0}")]
    Upstream(#[from] reqwest::Error),
}

/// Everything a request handler needs, shared behind an `Arc`.
pub struct Gateway {
    pub config: Config,
    pub stores: Stores,
    /// The price table in use (the newest import, else the built-in one) under the config's
    /// `pricing:`; swapped whole by `POST /api/prices/import`.
    pub prices: Prices,
    pub upstream: Upstream,
    pub directory: Directory,
    /// A circuit breaker per provider key (`GET /api/providers/health`).
    pub breakers: Breakers,
    pub runs: LiveRuns,
    pub metrics: Metrics,
    /// Tells approver channels about gates.
    pub notifier: Notifier,
    /// Work that must finish before shutdown (stream settlements, notifications).
    pub tasks: TaskTracker,
    /// The run books in the database, when several gateways may share runs (PostgreSQL);
    /// `None` keeps them in this process (SQLite: one gateway).
    pub shared: Option<SharedBooks>,
    backend: Backend,
    _demo: Option<mock_upstream::MockUpstream>,
}

pub type AppState = Arc<Gateway>;

/// The storage engine, for what only it can answer (`/health`).
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Gateway {
    /// Storage answers: `/health` is 200 only then.
    pub async fn ready(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(store) => store.ping().await.is_ok(),
            Backend::Postgres(store) => store.ping().await.is_ok(),
        }
    }
}

/// Opens storage and builds the gateway state.
pub async fn build(config: Config) -> Result<AppState, StartError> {
    let tasks = TaskTracker::new();
    let (backend, stores, shared) = match &config.storage {
        StorageConfig::Sqlite { path } => {
            let sqlite = SqliteStore::open(path).await?;
            let stores = Stores::from_backend(Arc::new(sqlite.clone()));
            (Backend::Sqlite(sqlite), stores, None)
        }
        StorageConfig::Postgres(pg) => {
            let store = PgStore::connect(&PgTarget::from(pg)).await?;
            let backend = Arc::new(store.clone());
            let shared = SharedBooks::new(backend.clone(), pg.hold_ttl, tasks.clone());
            (
                Backend::Postgres(store),
                Stores::from_backend(backend),
                Some(shared),
            )
        }
    };
    let master_key = load_master_key(&config, &data_dir(&config.storage))?;
    let prices = Prices::new(&config.pricing, stored_price_table(&stores).await?);
    let demo = match config.demo_provider {
        DemoProvider::Auto => {
            Some(mock_upstream::MockUpstream::start(mock_upstream::MockConfig::default()).await?)
        }
        DemoProvider::Off => None,
    };
    let directory = Directory::new(
        stores.clone(),
        master_key,
        demo.as_ref().map(|d| d.base_url()),
    );
    let gateway = Gateway {
        notifier: Notifier::new(config.approver_channels.clone(), tasks.clone())?,
        prices,
        breakers: Breakers::new(config.circuit_breaker),
        upstream: Upstream::new(config.upstream_timeout)?,
        directory,
        runs: LiveRuns::default(),
        metrics: Metrics::new(),
        tasks,
        stores,
        shared,
        backend,
        _demo: demo,
        config,
    };
    Ok(Arc::new(gateway))
}

/// The newest imported price table, else the built-in one.
async fn stored_price_table(stores: &Stores) -> Result<PriceTable, StartError> {
    let Some(record) = stores.prices.latest_price_table().await? else {
        return Ok(PriceTable::built_in());
    };
    PriceTable::from_stored(
        &record.version,
        &record.source,
        record.imported_at_ms,
        &record.prices,
    )
    .map_err(|e| StoreError::Corrupt(format!("price table {}: {e}", record.version)).into())
}

/// How often a gateway sharing its database looks for a table another gateway imported.
const PRICE_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// With shared books (PostgreSQL, maybe several gateways), adopts a price table imported
/// through another gateway within `PRICE_POLL`; a lone SQLite gateway imports through itself.
async fn follow_price_tables(gw: AppState) {
    if gw.shared.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(PRICE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let current = gw.prices.table();
        let newest = match gw.stores.prices.latest_price_version().await {
            Ok(Some(newest)) => newest,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the newest price table version");
                continue;
            }
        };
        if (&*current.version, current.imported_at_ms) == (newest.0.as_str(), Some(newest.1)) {
            continue;
        }
        match stored_price_table(&gw.stores).await {
            Ok(table) => {
                tracing::info!(version = %table.version, "adopted a price table imported elsewhere");
                gw.prices.swap(table);
            }
            Err(err) => tracing::warn!(error = %err, "cannot load the newest price table"),
        }
    }
}

/// Where the key and bootstrap token files go: beside the SQLite file, or the working
/// directory with PostgreSQL (where every gateway must be given the same key, see
/// `encryption_key`).
fn data_dir(storage: &StorageConfig) -> PathBuf {
    match storage {
        StorageConfig::Sqlite { path } => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        },
        StorageConfig::Postgres(_) => PathBuf::from("."),
    }
}

fn load_master_key(config: &Config, dir: &Path) -> Result<MasterKey, StartError> {
    if let Some(key) = &config.encryption_key {
        return Ok(MasterKey::parse(key.expose())?);
    }
    if matches!(config.storage, StorageConfig::Postgres(_)) {
        tracing::warn!(
            "no encryption_key set: gateways sharing this PostgreSQL database must all use the same rungate.key, or set RUNGATE_ENCRYPTION_KEY"
        );
    }
    let path = dir.join("rungate.key");
    let (key, created) = MasterKey::load_or_create(&path)?;
    if created {
        tracing::warn!(path = %path.display(), "generated a master key for provider keys; back it up, or set RUNGATE_ENCRYPTION_KEY");
    }
    Ok(key)
}

/// On a database with no admin token and no dashboard password, issues one with every scope
/// and writes it to a 0600 file beside the database, so the operator CLI works out of the box.
pub async fn bootstrap_admin_token(gw: &Gateway) -> Result<Option<PathBuf>, StartError> {
    if gw.config.dashboard_password.is_some()
        || gw.stores.admin_tokens.count_admin_tokens().await? > 0
    {
        return Ok(None);
    }
    let token = generate_token(TokenKind::Admin);
    let record = AdminToken {
        id: format!("adm_{}", uuid::Uuid::now_v7().simple()),
        name: "bootstrap".into(),
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(12).collect(),
        scopes: vec![Scope::Read, Scope::Write, Scope::Approve],
        revoked: false,
        created_at_ms: crate::run::now_ms(),
        revoked_at_ms: None,
    };
    let file = data_dir(&gw.config.storage).join("rungate.admin-token");
    write_private(&file, &token)?;
    gw.stores.admin_tokens.create_admin_token(&record).await?;
    Ok(Some(file))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Serves until `shutdown` resolves, then drains in-flight work.
pub async fn serve(
    gw: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(crate::proxy::lifecycle::sweep_idle_runs(gw.clone()));
    let webhooks = tokio::spawn(crate::notify::outbox::deliver_webhooks(gw.clone()));
    let books = tokio::spawn(crate::proxy::shared::keep_books(gw.clone()));
    let prices = tokio::spawn(follow_price_tables(gw.clone()));
    let router = crate::api::router(gw.clone());
    // TCP_NODELAY: without it small SSE frames wait for delayed ACKs (tens of ms per event).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    webhooks.abort();
    books.abort();
    prices.abort();
    gw.tasks.close();
    gw.tasks.wait().await;
    result
}
