//! Agents: named identities holding one hashed token, a default policy and a provider-key map.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreError;
use super::sql::{Columns, json_column};
use super::{Page, StoreResult};
use crate::security::TokenHash;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentStatus {
    Active,
    Disabled,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<AgentStatus> {
        match s {
            "active" => Some(AgentStatus::Active),
            "disabled" => Some(AgentStatus::Disabled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub token_hash: TokenHash,
    /// The first characters of the token, so an operator can recognise it.
    pub token_prefix: String,
    pub team: Option<String>,
    pub policy_id: Option<String>,
    /// provider name → provider key id.
    pub provider_keys: BTreeMap<String, String>,
    pub status: AgentStatus,
    pub metadata: serde_json::Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn get_agent(&self, id: &str) -> StoreResult<Agent>;
    async fn agent_by_name(&self, name: &str) -> StoreResult<Agent>;
    async fn agent_by_token(&self, hash: &TokenHash) -> StoreResult<Agent>;
    async fn list_agents(
        &self,
        status: Option<AgentStatus>,
        policy_id: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<Agent>, u64)>;
    /// Replaces every mutable field of the agent with `agent`'s.
    async fn update_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn delete_agent(&self, id: &str) -> StoreResult<()>;
}

pub(super) const COLUMNS: &str = "id, name, token_hash, token_prefix, team, policy_id, provider_keys, status, metadata, created_at, updated_at";

pub(super) fn agent_from_row(row: &impl Columns) -> StoreResult<Agent> {
    let status: String = row.col("status")?;
    let keys: String = row.col("provider_keys")?;
    let metadata: String = row.col("metadata")?;
    Ok(Agent {
        id: row.col("id")?,
        name: row.col("name")?,
        token_hash: TokenHash(row.col("token_hash")?),
        token_prefix: row.col("token_prefix")?,
        team: row.col("team")?,
        policy_id: row.col("policy_id")?,
        provider_keys: serde_json::from_str(&keys)
            .map_err(|e| StoreError::Corrupt(format!("provider_keys: {e}")))?,
        status: AgentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("agent status {status}")))?,
        metadata: json_column(&metadata, "metadata")?,
        created_at_ms: row.col("created_at")?,
        updated_at_ms: row.col("updated_at")?,
    })
}
