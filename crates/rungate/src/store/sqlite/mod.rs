//! The embedded backend: one SQLite file in WAL mode. WAL lets readers (the admin API) run
//! beside the single writer, and `synchronous = NORMAL` makes a commit an append to the WAL
//! without an fsync per transaction — a power cut may lose the last commits, never corrupt the
//! file or split a transaction, which is the promise the ledger needs.

mod admin_tokens;
mod agents;
mod analytics;
mod checkpoint;
mod gate_writes;
mod gates;
mod keys;
mod policies;
mod prices;
mod run_writer;
mod runs;
mod sessions;
mod webhooks;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::StoreResult;
use super::sql::{to_i64, to_u64};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../../migrations/sqlite/0002_gates.sql")),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_raised_budgets.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_audit_head.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_webhooks.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_dashboard_sessions.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_prices.sql"),
    ),
];

/// Readers share a pool; every write goes through one dedicated connection. SQLite admits one
/// writer at a time anyway, and queueing writers on an async pool is fair and cheap, where
/// letting them collide inside SQLite means `SQLITE_BUSY` and the busy handler's sleeps.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    runs: run_writer::RunWriter,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Checkpoints (the only fsyncs in this mode) never run inside a request's commit: see
        // `checkpoint` for who runs them.
        let writer_options = options.clone().pragma("wal_autocheckpoint", "0");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(writer_options)
            .await?;
        migrate(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let runs = run_writer::RunWriter::start(path)?;
        tokio::spawn(checkpoint::background(pool.clone(), runs.cue()));
        Ok(SqliteStore { pool, writer, runs })
    }

    /// The pool reads go through (readers run beside the writer in WAL mode).
    fn reads(&self) -> &SqlitePool {
        &self.pool
    }

    /// The one connection every write goes through.
    fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    /// Ready to serve: the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Applies the migrations not yet recorded in `schema_migrations`, in one transaction.
async fn migrate(writer: &SqlitePool) -> StoreResult<()> {
    let mut tx = writer.begin().await?;

    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await?;
    let applied: Option<i64> = sqlx::query("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    for (version, sql) in MIGRATIONS {
        if applied.is_some_and(|a| a >= *version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(crate::run::now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
