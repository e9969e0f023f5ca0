//! What the operator can set, and nothing else: YAML file → `RUNGATE_*` environment overrides →
//! `validate()` → [`Config`]. Unknown keys are refused with their full path (a typo in a budget
//! key must not silently mean "no budget"), defaults live in one place ([`Config::default`]),
//! and secrets are held in [`Secret`] so a `{:?}` of the config never prints them.

mod pricing_override;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use pricing_override::PriceOverride;

use crate::security::Secret;

/// Why a configuration was refused. Every message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: at `{key}`: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("invalid config: `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// Where runs, ledger and audit are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    Sqlite { path: PathBuf },
    Postgres(PostgresConfig),
}

/// `storage: {type: postgres, url, schema?, max_connections?, hold_ttl_ms?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    pub url: Secret<String>,
    /// The schema the tables live in; the server's search path when absent.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// How long a call's budget hold outlives its gateway's last renewal: a gateway that dies
    /// frees its calls' holds this long after its last renewal.
    pub hold_ttl: Duration,
    /// PostgreSQL's `synchronous_commit` for the gateway's sessions. Off (the default) makes
    /// the same promise as the SQLite default (WAL, `synchronous = NORMAL`): a database crash
    /// may lose the last fraction of a second of commits, never corrupt or split one; on waits
    /// for the WAL flush in every commit (about 1 ms on this machine's disk, held under the
    /// run's row lock).
    pub synchronous_commit: bool,
}

/// The validated configuration the gateway runs on.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub log_level: String,
    pub storage: StorageConfig,
    /// Master key for provider keys at rest; `None` means "use or create the key file".
    pub encryption_key: Option<Secret<String>>,
    pub dashboard_password: Option<Secret<String>>,
    pub max_body_bytes: usize,
    pub upstream_timeout: Duration,
    pub default_idle_timeout: Duration,
    pub sweep_interval: Duration,
    pub demo_provider: DemoProvider,
    pub pricing: BTreeMap<String, PriceOverride>,
    /// `model_aliases: {fast: anthropic/claude-haiku-4-5}`: a name agents may send, and the
    /// model (provider-prefixed or bare) it stands for.
    pub model_aliases: BTreeMap<String, String>,
    /// `circuit_breaker: {failure_threshold, cooldown_ms}` per provider key.
    pub circuit_breaker: crate::providers::health::BreakerSettings,
    /// Incoming-webhook URL per Slack channel named by gate rules (`slack://#ops` → URL). The URLs
    /// carry Slack's token, so they are secrets.
    pub approver_channels: BTreeMap<String, Secret<String>>,
    /// Wait before a failed webhook delivery's first retry; it doubles on every further failure.
    pub webhook_backoff: Duration,
    /// OTLP/HTTP collector that receives each run's trace when the run closes.
    pub otlp_endpoint: Option<String>,
}

/// Whether the built-in deterministic provider answers when no provider key is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoProvider {
    /// On only while the store holds no provider key for the called provider.
    Auto,
    Off,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            log_level: "info".into(),
            storage: StorageConfig::Sqlite {
                path: PathBuf::from("rungate.db"),
            },
            encryption_key: None,
            dashboard_password: None,
            max_body_bytes: 10 * 1024 * 1024,
            upstream_timeout: Duration::from_secs(120),
            default_idle_timeout: Duration::from_secs(15 * 60),
            sweep_interval: Duration::from_secs(30),
            demo_provider: DemoProvider::Auto,
            pricing: BTreeMap::new(),
            model_aliases: BTreeMap::new(),
            circuit_breaker: crate::providers::health::BreakerSettings::default(),
            approver_channels: BTreeMap::new(),
            webhook_backoff: Duration::from_secs(1),
            otlp_endpoint: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    host: Option<String>,
    encryption_key: Option<String>,
    log_level: Option<String>,
    storage: Option<FileStorage>,
    dashboard_password: Option<String>,
    max_body_bytes: Option<usize>,
    upstream_timeout_ms: Option<u64>,
    idle_timeout_s: Option<u64>,
    sweep_interval_s: Option<u64>,
    demo_provider: Option<DemoProvider>,
    pricing: Option<BTreeMap<String, PriceOverride>>,
    model_aliases: Option<BTreeMap<String, String>>,
    circuit_breaker: Option<FileBreaker>,
    approver_channels: Option<BTreeMap<String, String>>,
    webhook_backoff_ms: Option<u64>,
    otlp_endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBreaker {
    failure_threshold: Option<u32>,
    cooldown_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    #[serde(rename = "type")]
    kind: String,
    path: Option<String>,
    url: Option<String>,
    schema: Option<String>,
    max_connections: Option<u32>,
    hold_ttl_ms: Option<u64>,
    synchronous_commit: Option<bool>,
}

impl Config {
    /// Loads `path` (or the embedded default when `None`), then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RUNGATE_"))
            .collect();
        Config::from_parts(file, &env)
    }

    /// Parses YAML text; used by `load` and by the tests that check every example config.
    pub fn from_yaml(text: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let file = parse_yaml(text, Path::new("<inline>"))?;
        Config::from_parts(file, env)
    }

    fn from_parts(mut file: FileConfig, env: &[(String, String)]) -> Result<Config, ConfigError> {
        apply_env(&mut file, env)?;
        build(file)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text, path)
}

fn parse_yaml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        ConfigError::Parse {
            path: path.to_owned(),
            key,
            message: err.into_inner().to_string(),
        }
    })
}

fn apply_env(file: &mut FileConfig, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (key, value) in env {
        let value = value.clone();
        match key.as_str() {
            "RUNGATE_PORT" => file.port = Some(parse_env(key, &value)?),
            "RUNGATE_HOST" => file.host = Some(value),
            "RUNGATE_OTLP_ENDPOINT" => file.otlp_endpoint = Some(value),
            "RUNGATE_ENCRYPTION_KEY" => file.encryption_key = Some(value),
            "RUNGATE_LOG_LEVEL" => file.log_level = Some(value),
            "RUNGATE_DASHBOARD_PASSWORD" => file.dashboard_password = Some(value),
            "RUNGATE_MAX_BODY_BYTES" => file.max_body_bytes = Some(parse_env(key, &value)?),
            "RUNGATE_UPSTREAM_TIMEOUT_MS" => {
                file.upstream_timeout_ms = Some(parse_env(key, &value)?)
            }
            "RUNGATE_IDLE_TIMEOUT_S" => file.idle_timeout_s = Some(parse_env(key, &value)?),
            "RUNGATE_STORAGE_PATH" => {
                file.storage = Some(FileStorage {
                    kind: "sqlite".into(),
                    path: Some(value),
                    ..FileStorage::default()
                })
            }
            "RUNGATE_DATABASE_URL" => {
                // The URL replaces the file's; its other postgres settings stay.
                let kept = file.storage.take().filter(|s| s.kind == "postgres");
                file.storage = Some(FileStorage {
                    kind: "postgres".into(),
                    url: Some(value),
                    ..kept.unwrap_or_default()
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|err: T::Err| ConfigError::Invalid {
            key: key.to_owned(),
            message: format!("{value:?}: {err}"),
        })
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn build(file: FileConfig) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    if let Some(port) = file.port {
        config.port = port;
    }
    if let Some(host) = file.host {
        config.host = match host.as_str() {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other
                .parse()
                .map_err(|_| invalid("host", format!("{other:?} is not an IP address")))?,
        };
    }
    if let Some(level) = file.log_level {
        const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
        if !LEVELS.contains(&level.as_str()) {
            return Err(invalid(
                "log_level",
                format!("{level:?} is not one of {LEVELS:?}"),
            ));
        }
        config.log_level = level;
    }
    if let Some(storage) = file.storage {
        config.storage = build_storage(storage)?;
    }
    if let Some(key) = file.encryption_key {
        crate::security::MasterKey::parse(&key)
            .map_err(|err| invalid("encryption_key", err.to_string()))?;
        config.encryption_key = Some(Secret::new(key));
    }
    config.dashboard_password = file
        .dashboard_password
        .filter(|p| !p.is_empty())
        .map(Secret::new);
    if let Some(bytes) = file.max_body_bytes {
        if bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        config.max_body_bytes = bytes;
    }
    if let Some(ms) = file.upstream_timeout_ms {
        if ms == 0 {
            return Err(invalid("upstream_timeout_ms", "must be greater than 0"));
        }
        config.upstream_timeout = Duration::from_millis(ms);
    }
    if let Some(secs) = file.idle_timeout_s {
        if secs == 0 {
            return Err(invalid("idle_timeout_s", "must be greater than 0"));
        }
        config.default_idle_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = file.sweep_interval_s {
        config.sweep_interval = Duration::from_secs(secs.max(1));
    }
    if let Some(demo) = file.demo_provider {
        config.demo_provider = demo;
    }
    if let Some(pricing) = file.pricing {
        for (model, price) in &pricing {
            price
                .validate()
                .map_err(|msg| invalid(&format!("pricing.{model}"), msg))?;
        }
        config.pricing = pricing;
    }
    if let Some(aliases) = file.model_aliases {
        for (alias, model) in &aliases {
            if model.trim().is_empty() || aliases.contains_key(model) {
                return Err(invalid(
                    &format!("model_aliases.{alias}"),
                    "must name a model that is not itself an alias",
                ));
            }
        }
        config.model_aliases = aliases;
    }
    if let Some(breaker) = file.circuit_breaker {
        if let Some(threshold) = breaker.failure_threshold {
            if threshold == 0 {
                return Err(invalid(
                    "circuit_breaker.failure_threshold",
                    "must be greater than 0",
                ));
            }
            config.circuit_breaker.failure_threshold = threshold;
        }
        if let Some(ms) = breaker.cooldown_ms {
            config.circuit_breaker.cooldown = Duration::from_millis(ms);
        }
    }
    if let Some(endpoint) = file.otlp_endpoint.filter(|e| !e.is_empty()) {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid("otlp_endpoint", "must be an http(s) URL"));
        }
        config.otlp_endpoint = Some(endpoint);
    }
    if let Some(ms) = file.webhook_backoff_ms {
        if ms == 0 {
            return Err(invalid("webhook_backoff_ms", "must be greater than 0"));
        }
        config.webhook_backoff = Duration::from_millis(ms);
    }
    for (channel, url) in file.approver_channels.unwrap_or_default() {
        let key = format!("approver_channels.{channel}");
        if !channel.starts_with("slack://#") {
            return Err(invalid(&key, "channel names look like slack://#channel"));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(
                &key,
                "must be the channel's incoming-webhook http(s) URL",
            ));
        }
        config.approver_channels.insert(channel, Secret::new(url));
    }
    Ok(config)
}

fn build_storage(storage: FileStorage) -> Result<StorageConfig, ConfigError> {
    match storage.kind.as_str() {
        "sqlite" => {
            let path = storage.path.unwrap_or_else(|| "rungate.db".into());
            if path.is_empty() {
                return Err(invalid("storage.path", "must not be empty"));
            }
            Ok(StorageConfig::Sqlite {
                path: PathBuf::from(path),
            })
        }
        "postgres" => {
            let url = storage
                .url
                .ok_or_else(|| invalid("storage.url", "required for postgres"))?;
            if storage.hold_ttl_ms.is_some_and(|ms| ms < 1000) {
                return Err(invalid("storage.hold_ttl_ms", "must be at least 1000"));
            }
            if storage.max_connections == Some(0) {
                return Err(invalid("storage.max_connections", "must be greater than 0"));
            }
            Ok(StorageConfig::Postgres(PostgresConfig {
                url: Secret::new(url),
                schema: storage.schema.filter(|s| !s.is_empty()),
                max_connections: storage.max_connections.unwrap_or(16),
                hold_ttl: Duration::from_millis(storage.hold_ttl_ms.unwrap_or(30_000)),
                synchronous_commit: storage.synchronous_commit.unwrap_or(false),
            }))
        }
        other => Err(invalid(
            "storage.type",
            format!("{other:?} is not one of [\"sqlite\", \"postgres\"]"),
        )),
    }
}

#[cfg(test)]
mod tests;
