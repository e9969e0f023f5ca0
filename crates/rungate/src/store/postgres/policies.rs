//! `PolicyStore` on PostgreSQL: the shared implementation (`store::sql::policies`).

crate::store::sql::policies::policy_store!(super::PgStore, sqlx::Postgres);
