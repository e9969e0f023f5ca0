//! `ProviderKeyStore` on PostgreSQL: the shared implementation (`store::sql::keys`).

crate::store::sql::keys::provider_key_store!(super::PgStore);
