use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, found, page_binds, to_u64};
use crate::security::TokenHash;
use crate::store::admin_tokens::token_from_row;
use crate::store::{AdminToken, AdminTokenStore, Page, StoreError, StoreResult};

const COLUMNS: &str = "id, name, token_hash, token_prefix, scopes, revoked, created_at, revoked_at";

impl SqliteStore {
    async fn admin_token_where(&self, clause: &str, value: &str) -> StoreResult<AdminToken> {
        let sql = format!("SELECT {COLUMNS} FROM admin_tokens WHERE {clause} = ?");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(token_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn create_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
        let sql = format!("INSERT INTO admin_tokens ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&sql)
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.token_hash.0)
            .bind(&t.token_prefix)
            .bind(serde_json::to_string(&t.scopes).unwrap_or_else(|_| "[]".into()))
            .bind(t.revoked)
            .bind(t.created_at_ms)
            .bind(t.revoked_at_ms)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn get_admin_token(&self, id: &str) -> StoreResult<AdminToken> {
        self.admin_token_where("id", id).await
    }

    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<AdminToken> {
        self.admin_token_where("token_hash", &hash.0).await
    }

    async fn list_admin_tokens(
        &self,
        revoked: Option<bool>,
        page: Page,
    ) -> StoreResult<(Vec<AdminToken>, u64)> {
        let filter = "(?1 IS NULL OR revoked = ?1)";
        let (limit, offset) = page_binds(page);
        let sql = format!(
            "SELECT {COLUMNS} FROM admin_tokens WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(revoked)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM admin_tokens WHERE {filter}"))
            .bind(revoked)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let tokens = rows
            .iter()
            .map(token_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((tokens, to_u64(total)))
    }

    async fn revoke_admin_token(&self, id: &str, at_ms: i64) -> StoreResult<AdminToken> {
        let result = sqlx::query("UPDATE admin_tokens SET revoked = 1, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(at_ms)
            .bind(id)
            .execute(&self.writer)
            .await?;
        found(result.rows_affected())?;
        self.get_admin_token(id).await
    }

    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM admin_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(to_u64(total))
    }
}
