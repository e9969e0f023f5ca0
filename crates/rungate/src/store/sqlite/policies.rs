//! `PolicyStore` on SQLite: the shared implementation (`store::sql::policies`).

crate::store::sql::policies::policy_store!(super::SqliteStore, sqlx::Sqlite);
