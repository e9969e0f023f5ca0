//! Provider keys: the operator's credentials for upstream providers, stored encrypted.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreError;
use super::sql::Columns;
use super::{Page, StoreResult};
use crate::config::PriceOverride;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "active" => Some(KeyStatus::Active),
            "disabled" => Some(KeyStatus::Disabled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderKeyRecord {
    pub id: String,
    pub provider: String,
    pub name: String,
    /// `v1:` AES-256-GCM blob; see `security::MasterKey`.
    pub encrypted_key: String,
    pub key_suffix: String,
    /// Provider base URL without `/v1`; `None` means the provider's public endpoint.
    pub base_url: Option<String>,
    pub status: KeyStatus,
    /// The key's own prices by model (or `*`), beating the price table and the config; empty
    /// when the key has none (stored as NULL).
    pub pricing: BTreeMap<String, PriceOverride>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[async_trait]
pub trait ProviderKeyStore: Send + Sync {
    async fn create_key(&self, key: &ProviderKeyRecord) -> StoreResult<()>;
    async fn get_key(&self, id: &str) -> StoreResult<ProviderKeyRecord>;
    async fn key_by_name(&self, name: &str) -> StoreResult<ProviderKeyRecord>;
    async fn list_keys(
        &self,
        provider: Option<&str>,
        status: Option<KeyStatus>,
        page: Page,
    ) -> StoreResult<(Vec<ProviderKeyRecord>, u64)>;
    async fn update_key(&self, key: &ProviderKeyRecord) -> StoreResult<()>;
    async fn delete_key(&self, id: &str) -> StoreResult<()>;
}

pub(super) fn key_from_row(row: &impl Columns) -> StoreResult<ProviderKeyRecord> {
    let status: String = row.col("status")?;
    Ok(ProviderKeyRecord {
        id: row.col("id")?,
        provider: row.col("provider")?,
        name: row.col("name")?,
        encrypted_key: row.col("encrypted_key")?,
        key_suffix: row.col("key_suffix")?,
        base_url: row.col("base_url")?,
        status: KeyStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("key status {status}")))?,
        pricing: pricing_from_column(row.col("pricing")?)?,
        created_at_ms: row.col("created_at")?,
        updated_at_ms: row.col("updated_at")?,
    })
}

fn pricing_from_column(text: Option<String>) -> StoreResult<BTreeMap<String, PriceOverride>> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("provider key pricing: {e}"))),
    }
}

/// The `pricing` column: JSON, or NULL for a key without prices.
pub(super) fn pricing_column(pricing: &BTreeMap<String, PriceOverride>) -> Option<String> {
    (!pricing.is_empty())
        .then(|| serde_json::to_string(pricing).ok())
        .flatten()
}
