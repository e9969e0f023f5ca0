//! `AgentStore` on SQLite: the shared implementation (`store::sql::agents`).

crate::store::sql::agents::agent_store!(super::SqliteStore);
