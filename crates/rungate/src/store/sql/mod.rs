//! What the two SQL backends share. Both schemas keep the same columns, with types both drivers
//! decode alike (BIGINT/INTEGER, TEXT, bytes), so each table has one row mapper (in its
//! domain's store module) that SQLite and PostgreSQL rows both go through ([`Columns`]). The
//! submodules are the store implementations written once in portable SQL, each a macro that
//! a backend expands for its store; only what differs by design (SQLite's single writer,
//! PostgreSQL's row locks) is written per backend.

pub(super) mod admin_tokens;
pub(super) mod agents;
pub(super) mod gates;
pub(super) mod keys;
pub(super) mod policies;
pub(super) mod prices;
pub(super) mod runs;
pub(super) mod sessions;
pub(super) mod webhooks;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, Sqlite};

use super::{Page, StoreError, StoreResult};

/// A value both drivers decode.
pub trait Column:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A row of either backend.
pub trait Columns {
    fn col<T: Column>(&self, name: &str) -> StoreResult<T>;
}

impl Columns for SqliteRow {
    fn col<T: Column>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

impl Columns for PgRow {
    fn col<T: Column>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

pub(super) fn json_column(text: &str, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(super) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Maps a unique-constraint violation to `Conflict` and everything else to `Database`.
pub(super) fn conflict_or(err: sqlx::Error, what: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Database(err),
    }
}

/// `NotFound` when an UPDATE/DELETE touched no row.
pub(super) fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(super) fn page_binds(page: Page) -> (i64, i64) {
    (i64::from(page.limit.clamp(1, 1000)), i64::from(page.offset))
}
