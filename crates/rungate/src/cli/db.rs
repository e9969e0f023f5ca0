//! `rungate migrate` and `rungate db copy`: the commands that work on the database itself, not
//! on a running gateway, so they take a config file or a database address instead of `--url`.
//!
//! `migrate` opens the configured storage exactly as `start` does (opening applies the
//! migrations) and reports what changed, so an operator can upgrade the schema in a deploy step
//! before any gateway starts.
//!
//! `db copy` moves an embedded SQLite database into PostgreSQL.
//!
//! It is generic: for each table it asks PostgreSQL which columns the table has and of which
//! type (`information_schema`), reads those columns from SQLite and converts each value by the
//! PostgreSQL type. The two schemas are kept column for column alike (see `migrations/postgres`),
//! so a migration that adds a column to both needs no change here. A column only SQLite has stops
//! the copy with its name instead of being dropped without a word; a column only PostgreSQL has
//! (the shared backend's own bookkeeping, such as a run's counters of calls in flight) is left to
//! its declared default, and stops the copy when it has none.
//!
//! It is transactional: every row goes in through one PostgreSQL transaction, so a failure
//! half-way (a value that does not convert, a lost connection, Ctrl-C) leaves the target migrated
//! but empty, and the copy can simply be run again. The source is opened read-only and read
//! inside one SQLite read transaction, so the tables are one consistent snapshot (runs, their
//! steps, ledger and audit chain agree) even if a gateway is still writing to the file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use futures::TryStreamExt as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePoolOptions};
use sqlx::{Connection as _, Postgres, QueryBuilder, Row as _};

use super::table::{Align, Table};
use crate::config::{Config, StorageConfig};
use crate::store::postgres::{PgStore, PgTarget};
use crate::store::sqlite::SqliteStore;

/// Every table `db copy` moves, parents before children so no foreign key is ever dangling.
/// `dashboard_sessions` is left behind on purpose: sessions are short-lived logins, not data,
/// and an operator moving to PostgreSQL simply logs in to the dashboard again.
pub const TABLES: &[&str] = &[
    "provider_keys",
    "policies",
    "policy_versions",
    "agents",
    "admin_tokens",
    "runs",
    "steps",
    "ledger",
    "audit_events",
    "gates",
    "webhooks",
    "webhook_deliveries",
    "price_tables",
];

/// The SQLite schema version this build writes: one per file in `migrations/sqlite` (a test
/// below keeps the two in step).
const SQLITE_SCHEMA_VERSION: i64 = 7;

/// Rows per INSERT statement, lowered for wide tables so a statement stays within PostgreSQL's
/// 65 535 bind parameters.
const BATCH_ROWS: usize = 500;
const MAX_BINDS: usize = 65_535;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every row of a SQLite database into an empty PostgreSQL database, in one
    /// transaction (the target schema is created and migrated first).
    Copy {
        /// The SQLite database file; opened read-only, it must be fully migrated.
        #[arg(long, value_name = "SQLITE_FILE")]
        from: PathBuf,
        /// The PostgreSQL URL, postgres://user:password@host:port/database.
        #[arg(
            long,
            value_name = "POSTGRES_URL",
            env = "RUNGATE_DATABASE_URL",
            hide_env_values = true
        )]
        to: String,
        /// The schema to copy into, created when missing (default: the server's search path).
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
}

pub async fn run(command: DbCommand) -> anyhow::Result<String> {
    match command {
        DbCommand::Copy { from, to, schema } => {
            let copied = copy(&from, &to, schema.as_deref()).await?;
            let mut table = Table::new(&[("TABLE", Align::Left), ("ROWS", Align::Right)]);
            let mut total = 0u64;
            for (name, rows) in &copied {
                total += rows;
                table.row(vec![(*name).to_owned(), rows.to_string()]);
            }
            table.row(vec!["total".to_owned(), total.to_string()]);
            let place = match &schema {
                Some(schema) => format!("{} (schema {schema})", describe_pg(&to)),
                None => describe_pg(&to),
            };
            Ok(format!(
                "copied {} into {place}\n{}",
                from.display(),
                table.render()
            ))
        }
    }
}

/// `rungate migrate`: opens the configured storage as `start` would and says what it applied.
pub async fn migrate(config_path: Option<PathBuf>) -> anyhow::Result<String> {
    let config = Config::load(config_path.as_deref())?;
    // The report goes to stdout; the log only says what went wrong (PostgreSQL's "already exists,
    // skipping" notices are info), unless the config asks for more detail.
    let level = match config.log_level.as_str() {
        level @ ("debug" | "trace") => level,
        _ => "warn",
    };
    super::init_tracing(level);
    // Opening the store migrates; the versions recorded from now on are the ones it applied.
    let started = crate::run::now_ms();
    let (place, recorded) = match &config.storage {
        StorageConfig::Sqlite { path } => {
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
            drop(store);
            let options = SqliteConnectOptions::new().filename(path).read_only(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            let recorded: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT version, applied_at FROM schema_migrations ORDER BY version",
            )
            .fetch_all(&pool)
            .await?;
            pool.close().await;
            (format!("SQLite {}", path.display()), recorded)
        }
        StorageConfig::Postgres(pg) => {
            let url = pg.url.expose();
            let store = PgStore::connect(&PgTarget {
                max_connections: 2,
                ..PgTarget::from(pg)
            })
            .await
            .with_context(|| format!("cannot open PostgreSQL at {}", describe_pg(url)))?;
            let recorded: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT version, applied_at FROM schema_migrations ORDER BY version",
            )
            .fetch_all(store.pool())
            .await?;
            store.pool().close().await;
            let place = match &pg.schema {
                Some(schema) => format!("PostgreSQL {} (schema {schema})", describe_pg(url)),
                None => format!("PostgreSQL {}", describe_pg(url)),
            };
            (place, recorded)
        }
    };
    let version = recorded.iter().map(|(v, _)| *v).max().unwrap_or(0);
    let applied: Vec<String> = recorded
        .iter()
        .filter(|(_, at)| *at >= started)
        .map(|(v, _)| v.to_string())
        .collect();
    Ok(if applied.is_empty() {
        format!("{place}: the schema is up to date (version {version})\n")
    } else {
        format!(
            "{place}: applied migration{} {}; the schema is at version {version}\n",
            if applied.len() == 1 { "" } else { "s" },
            applied.join(", ")
        )
    })
}

/// Copies every table of the SQLite database at `from` into the PostgreSQL database at `to`
/// (in `schema`, or the server's search path); returns the rows copied per table, in order.
pub async fn copy(
    from: &Path,
    to: &str,
    schema: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    if !from.is_file() {
        bail!(
            "{} is not a file (--from takes a SQLite database file)",
            from.display()
        );
    }
    let options = SqliteConnectOptions::new()
        .filename(from)
        .read_only(true)
        .create_if_missing(false);
    let mut source = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {} read-only", from.display()))?;
    check_source_version(&mut source, from).await?;

    let target = PgStore::connect(&PgTarget {
        url: to.to_owned(),
        schema: schema.map(str::to_owned),
        max_connections: 2,
        synchronous_commit: true,
    })
    .await
    .with_context(|| format!("cannot open PostgreSQL at {}", describe_pg(to)))?;
    let copied = copy_all(&mut source, &target).await;
    target.pool().close().await;
    source.close().await?;
    copied
}

async fn copy_all(
    source: &mut SqliteConnection,
    target: &PgStore,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let mut snapshot = source.begin().await?;
    let mut tx = target.pool().begin().await?;
    let mut occupied = Vec::new();
    for table in TABLES {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(table));
        let has_rows: bool = sqlx::query_scalar(&sql).fetch_one(&mut *tx).await?;
        if has_rows {
            occupied.push(*table);
        }
    }
    if !occupied.is_empty() {
        bail!(
            "the target already has rows in {}; db copy only fills an empty database \
             (give another --schema, or empty the target first)",
            occupied.join(", ")
        );
    }
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = copy_table(&mut snapshot, &mut tx, table)
            .await
            .with_context(|| format!("copying table {table}"))?;
        copied.push((*table, rows));
    }
    tx.commit().await?;
    snapshot.rollback().await?;
    Ok(copied)
}

/// Refuses a source that is not a rungate database or not at this build's schema version.
async fn check_source_version(source: &mut SqliteConnection, from: &Path) -> anyhow::Result<()> {
    let tracked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    )
    .fetch_one(&mut *source)
    .await
    .with_context(|| format!("cannot read {} as a SQLite database", from.display()))?;
    if tracked == 0 {
        bail!(
            "{} is not a rungate database (it has no schema_migrations table)",
            from.display()
        );
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *source)
        .await?;
    let version = version.unwrap_or(0);
    if version < SQLITE_SCHEMA_VERSION {
        bail!(
            "{} is at schema version {version}, this rungate expects {SQLITE_SCHEMA_VERSION}; \
             bring it up to date first with `rungate migrate --config <a config whose storage is this file>` \
             (or RUNGATE_STORAGE_PATH={} rungate migrate)",
            from.display(),
            from.display()
        );
    }
    if version > SQLITE_SCHEMA_VERSION {
        bail!(
            "{} is at schema version {version}, newer than this rungate knows \
             ({SQLITE_SCHEMA_VERSION}); copy it with the rungate version that wrote it",
            from.display()
        );
    }
    Ok(())
}

/// How a column's values are carried, chosen by its PostgreSQL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BigInt,
    Text,
    Bytes,
}

enum Value {
    BigInt(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

struct Column {
    name: String,
    kind: Kind,
    /// PostgreSQL fills the column itself when an INSERT leaves it out.
    has_default: bool,
}

async fn copy_table(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    table: &str,
) -> anyhow::Result<u64> {
    let columns = target_columns(target, table).await?;
    let columns = shared_columns(source, table, columns).await?;
    let list = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let per_batch = (MAX_BINDS / columns.len()).clamp(1, BATCH_ROWS);
    let select = format!("SELECT {list} FROM {}", quote(table));
    let mut rows = sqlx::query(&select).fetch(&mut *source);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_batch);
    let mut copied = 0u64;
    while let Some(row) = rows.try_next().await? {
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let value = match column.kind {
                Kind::BigInt => row.try_get(i).map(Value::BigInt),
                Kind::Text => row.try_get(i).map(Value::Text),
                Kind::Bytes => row.try_get(i).map(Value::Bytes),
            }
            .with_context(|| {
                format!(
                    "column {}: a value that is not {:?}",
                    column.name, column.kind
                )
            })?;
            values.push(value);
        }
        batch.push(values);
        if batch.len() == per_batch {
            copied += insert(target, table, &list, &mut batch).await?;
        }
    }
    if !batch.is_empty() {
        copied += insert(target, table, &list, &mut batch).await?;
    }
    Ok(copied)
}

/// The target table's columns in their declared order, from `information_schema`.
async fn target_columns(target: &mut PgConnection, table: &str) -> anyhow::Result<Vec<Column>> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, column_default IS NOT NULL \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *target)
    .await?;
    if rows.is_empty() {
        bail!("the PostgreSQL schema has no table {table}");
    }
    rows.into_iter()
        .map(|(name, data_type, has_default)| {
            let kind = match data_type.as_str() {
                "bigint" => Kind::BigInt,
                "text" => Kind::Text,
                "bytea" => Kind::Bytes,
                other => bail!(
                    "column {table}.{name} has PostgreSQL type {other}, which db copy does not carry"
                ),
            };
            Ok(Column {
                name,
                kind,
                has_default,
            })
        })
        .collect()
}

/// The target's columns that are read from the source. Every source column must have a target
/// (else it would be lost); a target column the source lacks is left to its default, and must
/// have one.
async fn shared_columns(
    source: &mut SqliteConnection,
    table: &str,
    columns: Vec<Column>,
) -> anyhow::Result<Vec<Column>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
        .bind(table)
        .fetch_all(&mut *source)
        .await?;
    if names.is_empty() {
        bail!("the SQLite database has no table {table}");
    }
    let extra: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(n)))
        .collect();
    if !extra.is_empty() {
        bail!(
            "the SQLite table has column(s) {} that PostgreSQL lacks; they would be lost",
            extra.join(", ")
        );
    }
    let (shared, target_only): (Vec<Column>, Vec<Column>) = columns
        .into_iter()
        .partition(|c| names.iter().any(|n| n.eq_ignore_ascii_case(&c.name)));
    let missing: Vec<&str> = target_only
        .iter()
        .filter(|c| !c.has_default)
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the SQLite table lacks column(s) {} that PostgreSQL requires",
            missing.join(", ")
        );
    }
    Ok(shared)
}

/// One multi-row INSERT of the batch (emptied); the number of rows inserted.
async fn insert(
    target: &mut PgConnection,
    table: &str,
    list: &str,
    batch: &mut Vec<Vec<Value>>,
) -> anyhow::Result<u64> {
    let mut query: QueryBuilder<'_, Postgres> =
        QueryBuilder::new(format!("INSERT INTO {} ({list}) ", quote(table)));
    query.push_values(batch.drain(..), |mut row, values| {
        for value in values {
            match value {
                Value::BigInt(v) => row.push_bind(v),
                Value::Text(v) => row.push_bind(v),
                Value::Bytes(v) => row.push_bind(v),
            };
        }
    });
    Ok(query.build().execute(&mut *target).await?.rows_affected())
}

/// An identifier in double quotes, valid in both SQLite and PostgreSQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL URL as it may be shown: user, host, port and database, never the password.
fn describe_pg(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) => format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        ),
        Err(_) => "the given PostgreSQL URL".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_expected_sqlite_version_is_the_one_a_fresh_database_gets() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("fresh.db");
        drop(SqliteStore::open(&path).await?);
        let mut conn =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path)).await?;
        let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(version, SQLITE_SCHEMA_VERSION);
        check_source_version(&mut conn, &path).await?;
        Ok(())
    }

    #[test]
    fn a_shown_url_never_carries_the_password() {
        let shown = describe_pg("postgres://app:hunter2@db.internal:6543/rungate?sslmode=require");
        assert_eq!(shown, "postgres://app@db.internal:6543/rungate");
    }

    #[test]
    fn identifiers_are_quoted_for_both_engines() {
        assert_eq!(quote("trigger"), "\"trigger\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
