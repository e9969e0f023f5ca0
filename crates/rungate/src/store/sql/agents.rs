//! `AgentStore` for both SQL backends, written once: the SQL is portable (numbered `$n`
//! parameters, which sqlx's SQLite driver reads too; `CAST(.. AS ..)` for typed NULL checks),
//! and each backend says which pool reads and which writes (SQLite writes through its one
//! writer connection). `sqlite/agents.rs` and `postgres/agents.rs` each expand it for their store.

/// Implements `AgentStore` for `$store`, which must have `reads()` and `writes()` pools.
macro_rules! agent_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::security::TokenHash;
            use $crate::store::agents::{COLUMNS, agent_from_row};
            use $crate::store::sql::{conflict_or, found, page_binds, to_u64};
            use $crate::store::{Agent, AgentStatus, AgentStore, Page, StoreError, StoreResult};

            const FILTER: &str = "(CAST($1 AS TEXT) IS NULL OR status = $1) AND (CAST($2 AS TEXT) IS NULL OR policy_id = $2)";

            const CONFLICT: &str = "an agent with this name already exists";

            impl $store {
                async fn agent_where(&self, clause: &str, value: &str) -> StoreResult<Agent> {
                    let sql = format!("SELECT {COLUMNS} FROM agents WHERE {clause} = $1");
                    let row = sqlx::query(&sql)
                        .bind(value)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref()
                        .map(agent_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }
            }

            fn provider_keys_json(a: &Agent) -> String {
                serde_json::to_string(&a.provider_keys).unwrap_or_else(|_| "{}".into())
            }

            #[async_trait]
            impl AgentStore for $store {
                async fn create_agent(&self, a: &Agent) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    );
                    sqlx::query(&sql)
                        .bind(&a.id)
                        .bind(&a.name)
                        .bind(&a.token_hash.0)
                        .bind(&a.token_prefix)
                        .bind(&a.team)
                        .bind(&a.policy_id)
                        .bind(provider_keys_json(a))
                        .bind(a.status.as_str())
                        .bind(a.metadata.to_string())
                        .bind(a.created_at_ms)
                        .bind(a.updated_at_ms)
                        .execute(self.writes())
                        .await
                        .map_err(|e| conflict_or(e, CONFLICT))?;
                    Ok(())
                }

                async fn get_agent(&self, id: &str) -> StoreResult<Agent> {
                    self.agent_where("id", id).await
                }

                async fn agent_by_name(&self, name: &str) -> StoreResult<Agent> {
                    self.agent_where("name", name).await
                }

                async fn agent_by_token(&self, hash: &TokenHash) -> StoreResult<Agent> {
                    self.agent_where("token_hash", &hash.0).await
                }

                async fn list_agents(
                    &self,
                    status: Option<AgentStatus>,
                    policy_id: Option<&str>,
                    page: Page,
                ) -> StoreResult<(Vec<Agent>, u64)> {
                    let (limit, offset) = page_binds(page);
                    let sql = format!(
                        "SELECT {COLUMNS} FROM agents WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(status.map(AgentStatus::as_str))
                        .bind(policy_id)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(self.reads())
                        .await?;
                    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM agents WHERE {FILTER}"))
                        .bind(status.map(AgentStatus::as_str))
                        .bind(policy_id)
                        .fetch_one(self.reads())
                        .await?
                        .try_get(0)?;
                    let agents = rows
                        .iter()
                        .map(agent_from_row)
                        .collect::<StoreResult<_>>()?;
                    Ok((agents, to_u64(total)))
                }

                async fn update_agent(&self, a: &Agent) -> StoreResult<()> {
                    let result = sqlx::query(
                        "UPDATE agents SET name = $1, token_hash = $2, token_prefix = $3, team = $4, policy_id = $5, provider_keys = $6, status = $7, metadata = $8, updated_at = $9 WHERE id = $10",
                    )
                    .bind(&a.name)
                    .bind(&a.token_hash.0)
                    .bind(&a.token_prefix)
                    .bind(&a.team)
                    .bind(&a.policy_id)
                    .bind(provider_keys_json(a))
                    .bind(a.status.as_str())
                    .bind(a.metadata.to_string())
                    .bind(a.updated_at_ms)
                    .bind(&a.id)
                    .execute(self.writes())
                    .await
                    .map_err(|e| conflict_or(e, CONFLICT))?;
                    found(result.rows_affected())
                }

                async fn delete_agent(&self, id: &str) -> StoreResult<()> {
                    let result = sqlx::query("DELETE FROM agents WHERE id = $1")
                        .bind(id)
                        .execute(self.writes())
                        .await?;
                    found(result.rows_affected())
                }
            }
        };
    };
}

pub(in crate::store) use agent_store;
