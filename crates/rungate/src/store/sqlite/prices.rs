//! `PriceStore` on SQLite: the shared implementation (`store::sql::prices`).

crate::store::sql::prices::price_store!(super::SqliteStore);
