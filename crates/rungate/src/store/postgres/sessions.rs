//! `SessionStore` on PostgreSQL: the shared implementation (`store::sql::sessions`).

crate::store::sql::sessions::session_store!(super::PgStore);
