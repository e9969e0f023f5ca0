//! Imported price tables (`POST /api/prices/import`): each version with its prices, so a
//! restarted gateway prices calls with the table it used before. The newest import is the one
//! in use; the built-in table is never stored.

use async_trait::async_trait;

use super::StoreResult;
use super::sql::{Columns, to_u64};

#[derive(Clone, Debug, PartialEq)]
pub struct PriceTableRecord {
    /// `litellm-<hash>`; importing the same file again refreshes its row.
    pub version: String,
    /// `litellm`.
    pub source: String,
    /// Models read from the file, and entries skipped as unreadable.
    pub models: u64,
    pub skipped: u64,
    /// The whole table as `providers::pricing::PriceTable::prices_json` writes it.
    pub prices: String,
    pub imported_at_ms: i64,
}

#[async_trait]
pub trait PriceStore: Send + Sync {
    /// Stores a table version (replacing a row of the same version).
    async fn save_price_table(&self, table: &PriceTableRecord) -> StoreResult<()>;
    /// The newest imported table, if any.
    async fn latest_price_table(&self) -> StoreResult<Option<PriceTableRecord>>;
    /// The newest import's version and time, without its prices (a cheap poll).
    async fn latest_price_version(&self) -> StoreResult<Option<(String, i64)>>;
}

pub(super) fn price_table_from_row(row: &impl Columns) -> StoreResult<PriceTableRecord> {
    Ok(PriceTableRecord {
        version: row.col("version")?,
        source: row.col("source")?,
        models: to_u64(row.col("models")?),
        skipped: to_u64(row.col("skipped")?),
        prices: row.col("prices")?,
        imported_at_ms: row.col("imported_at")?,
    })
}
