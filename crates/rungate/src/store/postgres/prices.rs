//! `PriceStore` on PostgreSQL: the shared implementation (`store::sql::prices`).

crate::store::sql::prices::price_store!(super::PgStore);
