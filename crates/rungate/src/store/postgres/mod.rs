//! The shared backend: PostgreSQL, for several gateways serving the same runs. Everything that
//! is a promise across gateways is decided inside the database under a row lock — a run's
//! budget (committed spend plus the holds of every gateway's calls in flight), its rate
//! windows, its gate transitions and its audit chain — so N gateways keep one run's cap, not
//! N of them. Everything else is the same as SQLite, down to the columns (see
//! `migrations/postgres`), so the row mappers are shared and a SQLite file can be copied in.

mod admin_tokens;
mod agents;
mod analytics;
mod audit;
mod gates;
mod holds;
mod keys;
mod policies;
mod prices;
mod runs;
mod sessions;
mod webhooks;
mod writer;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

use super::{StoreError, StoreResult};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_dashboard_sessions.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_prices.sql"),
    ),
];

/// Serialises `migrate` across gateways starting at once (an arbitrary, fixed key).
const MIGRATION_LOCK: i64 = 0x0072_756e_6761_7465;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct PgTarget {
    pub url: String,
    /// The schema the tables live in (created when missing); `None` is the server's default
    /// search path. Tests give each test its own.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// `synchronous_commit` for every session (see `config::PostgresConfig`).
    pub synchronous_commit: bool,
}

impl From<&crate::config::PostgresConfig> for PgTarget {
    fn from(config: &crate::config::PostgresConfig) -> PgTarget {
        PgTarget {
            url: config.url.expose().clone(),
            schema: config.schema.clone(),
            max_connections: config.max_connections,
            synchronous_commit: config.synchronous_commit,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Admissions and steps, committed in groups.
    writer: writer::Writer,
}

impl PgStore {
    /// Connects, creates the schema if asked for one, and brings it up to date.
    pub async fn connect(target: &PgTarget) -> StoreResult<PgStore> {
        // Notices ("already exists, skipping") are not news for a gateway's log.
        let mut options: PgConnectOptions = target.url.parse()?;
        let synchronous = if target.synchronous_commit {
            "on"
        } else {
            "off"
        };
        options = options.options([
            ("client_min_messages", "warning"),
            ("synchronous_commit", synchronous),
        ]);
        if let Some(schema) = &target.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Engine(format!(
                    "schema name {schema:?} must be letters, digits and underscores"
                )));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            // CREATE SCHEMA IF NOT EXISTS races with itself (a unique violation in the
            // catalogue) when gateways start together: serialise it like the migrations.
            let mut tx = admin.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
            tx.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await?;
            tx.commit().await?;
            admin.close().await;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(target.max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = PgStore {
            writer: writer::Writer::start(pool.clone()),
            pool,
        };
        store.migrate().await?;
        Ok(store)
    }

    fn reads(&self) -> &PgPool {
        &self.pool
    }

    fn writes(&self) -> &PgPool {
        &self.pool
    }

    /// Ready to serve: the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Applies the migrations not yet recorded, in one transaction, under an advisory lock so
    /// gateways started together do not race; returns the versions applied.
    pub async fn migrate(&self) -> StoreResult<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let current: Option<i64> = sqlx::query("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut applied = Vec::new();
        for (version, sql) in MIGRATIONS {
            if current.is_some_and(|c| c >= *version) {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(crate::run::now_ms())
                .execute(&mut *tx)
                .await?;
            applied.push(*version);
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The pool, for `rungate db copy` and tests that drop their schema.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}
