//! `AdminTokenStore` on SQLite: the shared implementation (`store::sql::admin_tokens`).

crate::store::sql::admin_tokens::admin_token_store!(super::SqliteStore);
