//! `AdminTokenStore` for both SQL backends, written once: the SQL is portable (numbered `$n`
//! parameters, which sqlx's SQLite driver reads too; `CAST(.. AS ..)` for typed NULL checks),
//! and each backend says which pool reads and which writes (SQLite writes through its one
//! writer connection). `sqlite/admin_tokens.rs` and `postgres/admin_tokens.rs` each expand it for their store.

/// Implements `AdminTokenStore` for `$store`, which must have `reads()` and `writes()` pools.
macro_rules! admin_token_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::security::TokenHash;
            use $crate::store::admin_tokens::{scopes_to_column, token_from_row};
            use $crate::store::sql::{page_binds, to_u64};
            use $crate::store::{AdminToken, AdminTokenStore, Page, StoreError, StoreResult};

            const COLUMNS: &str = "id, name, token_hash, token_prefix, scopes, revoked, created_at, revoked_at";

            const FILTER: &str = "(CAST($1 AS BIGINT) IS NULL OR revoked = $1)";

            impl $store {
                async fn admin_token_where(&self, clause: &str, value: &str) -> StoreResult<AdminToken> {
                    let sql = format!("SELECT {COLUMNS} FROM admin_tokens WHERE {clause} = $1");
                    let row = sqlx::query(&sql)
                        .bind(value)
                        .fetch_optional(self.writes())
                        .await?;
                    row.as_ref()
                        .map(token_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }
            }

            #[async_trait]
            impl AdminTokenStore for $store {
                async fn create_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
                    let sql =
                        format!("INSERT INTO admin_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
                    sqlx::query(&sql)
                        .bind(&t.id)
                        .bind(&t.name)
                        .bind(&t.token_hash.0)
                        .bind(&t.token_prefix)
                        .bind(scopes_to_column(&t.scopes))
                        .bind(i64::from(t.revoked))
                        .bind(t.created_at_ms)
                        .bind(t.revoked_at_ms)
                        .execute(self.writes())
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
                    let revoked = revoked.map(i64::from);
                    let (limit, offset) = page_binds(page);
                    let sql = format!(
                        "SELECT {COLUMNS} FROM admin_tokens WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(revoked)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(self.reads())
                        .await?;
                    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM admin_tokens WHERE {FILTER}"))
                        .bind(revoked)
                        .fetch_one(self.reads())
                        .await?
                        .try_get(0)?;
                    let tokens = rows
                        .iter()
                        .map(token_from_row)
                        .collect::<StoreResult<_>>()?;
                    Ok((tokens, to_u64(total)))
                }

                async fn revoke_admin_token(&self, id: &str, at_ms: i64) -> StoreResult<AdminToken> {
                    let sql = format!(
                        "UPDATE admin_tokens SET revoked = 1, revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {COLUMNS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(at_ms)
                        .bind(id)
                        .fetch_optional(self.writes())
                        .await?;
                    row.as_ref()
                        .map(token_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }

                async fn count_admin_tokens(&self) -> StoreResult<u64> {
                    let total: i64 = sqlx::query("SELECT COUNT(*) FROM admin_tokens")
                        .fetch_one(self.reads())
                        .await?
                        .try_get(0)?;
                    Ok(to_u64(total))
                }
            }
        };
    };
}

pub(in crate::store) use admin_token_store;
