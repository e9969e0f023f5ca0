//! `PriceStore` for both SQL backends, written once in portable SQL (`ON CONFLICT ... DO
//! UPDATE` reads the same in SQLite and PostgreSQL); `sqlite/prices.rs` and
//! `postgres/prices.rs` expand it. Read once at start and written on an import: off the hot path.

/// Implements `PriceStore` for `$store`, which must have `reads()` and `writes()` pools.
macro_rules! price_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::store::prices::price_table_from_row;
            use $crate::store::sql::to_i64;
            use $crate::store::{PriceStore, PriceTableRecord, StoreResult};

            #[async_trait]
            impl PriceStore for $store {
                async fn save_price_table(&self, t: &PriceTableRecord) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO price_tables (version, source, models, skipped, prices, imported_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (version) DO UPDATE SET source = excluded.source, models = excluded.models, \
                         skipped = excluded.skipped, prices = excluded.prices, imported_at = excluded.imported_at",
                    )
                    .bind(&t.version)
                    .bind(&t.source)
                    .bind(to_i64(t.models))
                    .bind(to_i64(t.skipped))
                    .bind(&t.prices)
                    .bind(t.imported_at_ms)
                    .execute(self.writes())
                    .await?;
                    Ok(())
                }

                async fn latest_price_table(&self) -> StoreResult<Option<PriceTableRecord>> {
                    let row = sqlx::query(
                        "SELECT version, source, models, skipped, prices, imported_at FROM price_tables ORDER BY imported_at DESC, version DESC LIMIT 1",
                    )
                    .fetch_optional(self.reads())
                    .await?;
                    row.as_ref().map(price_table_from_row).transpose()
                }

                async fn latest_price_version(&self) -> StoreResult<Option<(String, i64)>> {
                    let row = sqlx::query(
                        "SELECT version, imported_at FROM price_tables ORDER BY imported_at DESC, version DESC LIMIT 1",
                    )
                    .fetch_optional(self.reads())
                    .await?;
                    row.map(|row| Ok((row.try_get("version")?, row.try_get("imported_at")?)))
                        .transpose()
                }
            }
        };
    };
}

pub(in crate::store) use price_store;
