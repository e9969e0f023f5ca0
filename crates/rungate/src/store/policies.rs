//! Policies and their immutable versions.

use async_trait::async_trait;

use super::StoreError;
use super::sql::Columns;
use super::{Page, StoreResult};
use crate::policy::{PolicyDocument, PolicyVersion};

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Creates the policy with version 1.
    async fn create_policy(
        &self,
        id: &str,
        name: &str,
        document: &PolicyDocument,
    ) -> StoreResult<PolicyVersion>;
    /// Appends a new version; returns it.
    async fn add_policy_version(
        &self,
        id: &str,
        document: &PolicyDocument,
    ) -> StoreResult<PolicyVersion>;
    /// The latest version of a policy, by id.
    async fn get_policy(&self, id: &str) -> StoreResult<PolicyVersion>;
    async fn policy_by_name(&self, name: &str) -> StoreResult<PolicyVersion>;
    async fn policy_version(&self, id: &str, version: i64) -> StoreResult<PolicyVersion>;
    async fn policy_versions(&self, id: &str) -> StoreResult<Vec<PolicyVersion>>;
    async fn list_policies(
        &self,
        name: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<PolicyVersion>, u64)>;
    async fn delete_policy(&self, id: &str) -> StoreResult<()>;
}

pub(super) fn version_from_row(row: &impl Columns) -> StoreResult<PolicyVersion> {
    let document: String = row.col("document")?;
    Ok(PolicyVersion {
        policy_id: row.col("id")?,
        name: row.col("name")?,
        version: row.col("version")?,
        document: serde_json::from_str(&document)
            .map_err(|e| StoreError::Corrupt(format!("policy document: {e}")))?,
        created_at_ms: row.col("created_at")?,
    })
}
