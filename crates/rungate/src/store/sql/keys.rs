//! `ProviderKeyStore` for both SQL backends, written once: the SQL is portable (numbered `$n`
//! parameters, which sqlx's SQLite driver reads too; `CAST(.. AS ..)` for typed NULL checks),
//! and each backend says which pool reads and which writes (SQLite writes through its one
//! writer connection). `sqlite/keys.rs` and `postgres/keys.rs` each expand it for their store.

/// Implements `ProviderKeyStore` for `$store`, which must have `reads()` and `writes()` pools.
macro_rules! provider_key_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::store::keys::{key_from_row, pricing_column};
            use $crate::store::sql::{conflict_or, found, page_binds, to_u64};
            use $crate::store::{KeyStatus, Page, ProviderKeyRecord, ProviderKeyStore, StoreError, StoreResult};

            const COLUMNS: &str =
                "id, provider, name, encrypted_key, key_suffix, base_url, status, created_at, updated_at, pricing";

            const FILTER: &str = "(CAST($1 AS TEXT) IS NULL OR provider = $1) AND (CAST($2 AS TEXT) IS NULL OR status = $2)";

            const CONFLICT: &str = "a provider key with this name already exists";

            impl $store {
                async fn key_where(&self, clause: &str, value: &str) -> StoreResult<ProviderKeyRecord> {
                    let sql = format!("SELECT {COLUMNS} FROM provider_keys WHERE {clause} = $1");
                    let row = sqlx::query(&sql)
                        .bind(value)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref()
                        .map(key_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }
            }

            #[async_trait]
            impl ProviderKeyStore for $store {
                async fn create_key(&self, k: &ProviderKeyRecord) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO provider_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    );
                    sqlx::query(&sql)
                        .bind(&k.id)
                        .bind(&k.provider)
                        .bind(&k.name)
                        .bind(&k.encrypted_key)
                        .bind(&k.key_suffix)
                        .bind(&k.base_url)
                        .bind(k.status.as_str())
                        .bind(k.created_at_ms)
                        .bind(k.updated_at_ms)
                        .bind(pricing_column(&k.pricing))
                        .execute(self.writes())
                        .await
                        .map_err(|e| conflict_or(e, CONFLICT))?;
                    Ok(())
                }

                async fn get_key(&self, id: &str) -> StoreResult<ProviderKeyRecord> {
                    self.key_where("id", id).await
                }

                async fn key_by_name(&self, name: &str) -> StoreResult<ProviderKeyRecord> {
                    self.key_where("name", name).await
                }

                async fn list_keys(
                    &self,
                    provider: Option<&str>,
                    status: Option<KeyStatus>,
                    page: Page,
                ) -> StoreResult<(Vec<ProviderKeyRecord>, u64)> {
                    let (limit, offset) = page_binds(page);
                    let sql = format!(
                        "SELECT {COLUMNS} FROM provider_keys WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(provider)
                        .bind(status.map(KeyStatus::as_str))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(self.reads())
                        .await?;
                    let total: i64 = sqlx::query(&format!(
                        "SELECT COUNT(*) FROM provider_keys WHERE {FILTER}"
                    ))
                    .bind(provider)
                    .bind(status.map(KeyStatus::as_str))
                    .fetch_one(self.reads())
                    .await?
                    .try_get(0)?;
                    let keys = rows.iter().map(key_from_row).collect::<StoreResult<_>>()?;
                    Ok((keys, to_u64(total)))
                }

                async fn update_key(&self, k: &ProviderKeyRecord) -> StoreResult<()> {
                    let result = sqlx::query(
                        "UPDATE provider_keys SET provider = $1, name = $2, encrypted_key = $3, key_suffix = $4, base_url = $5, status = $6, updated_at = $7, pricing = $9 WHERE id = $8",
                    )
                    .bind(&k.provider)
                    .bind(&k.name)
                    .bind(&k.encrypted_key)
                    .bind(&k.key_suffix)
                    .bind(&k.base_url)
                    .bind(k.status.as_str())
                    .bind(k.updated_at_ms)
                    .bind(&k.id)
                    .bind(pricing_column(&k.pricing))
                    .execute(self.writes())
                    .await
                    .map_err(|e| conflict_or(e, CONFLICT))?;
                    found(result.rows_affected())
                }

                async fn delete_key(&self, id: &str) -> StoreResult<()> {
                    let result = sqlx::query("DELETE FROM provider_keys WHERE id = $1")
                        .bind(id)
                        .execute(self.writes())
                        .await?;
                    found(result.rows_affected())
                }
            }
        };
    };
}

pub(in crate::store) use provider_key_store;
