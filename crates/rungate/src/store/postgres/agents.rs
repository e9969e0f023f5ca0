//! `AgentStore` on PostgreSQL: the shared implementation (`store::sql::agents`).

crate::store::sql::agents::agent_store!(super::PgStore);
