//! `SessionStore` on SQLite: the shared implementation (`store::sql::sessions`).

crate::store::sql::sessions::session_store!(super::SqliteStore);
