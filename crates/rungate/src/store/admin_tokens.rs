//! Admin tokens: bearer credentials for `/api/*`, each with scopes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::sql::Columns;
use super::{Page, StoreResult};
use crate::security::TokenHash;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
    Approve,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Approve => "approve",
        }
    }

    /// `write` implies `read` (SPEC §2).
    pub fn granted_by(self, held: &[Scope]) -> bool {
        held.contains(&self) || (self == Scope::Read && held.contains(&Scope::Write))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub token_hash: TokenHash,
    pub token_prefix: String,
    pub scopes: Vec<Scope>,
    pub revoked: bool,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    async fn get_admin_token(&self, id: &str) -> StoreResult<AdminToken>;
    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<AdminToken>;
    async fn list_admin_tokens(
        &self,
        revoked: Option<bool>,
        page: Page,
    ) -> StoreResult<(Vec<AdminToken>, u64)>;
    async fn revoke_admin_token(&self, id: &str, at_ms: i64) -> StoreResult<AdminToken>;
    async fn count_admin_tokens(&self) -> StoreResult<u64>;
}

/// Scopes as stored: a JSON array of their names (admin tokens and dashboard sessions alike).
pub(super) fn scopes_to_column(scopes: &[Scope]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

pub(super) fn scopes_from_column(text: &str) -> StoreResult<Vec<Scope>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))
}

pub(super) fn token_from_row(row: &impl Columns) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: row.col("id")?,
        name: row.col("name")?,
        token_hash: TokenHash(row.col("token_hash")?),
        token_prefix: row.col("token_prefix")?,
        scopes: scopes_from_column(&row.col::<String>("scopes")?)?,
        revoked: row.col::<i64>("revoked")? != 0,
        created_at_ms: row.col("created_at")?,
        revoked_at_ms: row.col("revoked_at")?,
    })
}
