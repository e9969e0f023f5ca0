//! `PolicyStore` for both SQL backends, written once (portable SQL, as `sql::agents`). A new
//! version's number comes from `UPDATE ... RETURNING` on the policy row inside the transaction
//! that inserts the version: on PostgreSQL the update holds the row's lock until commit, so
//! gateways adding versions at once are serialised and each gets its own number (SQLite has
//! one writer anyway). The version returned is read inside that same transaction.

/// Implements `PolicyStore` for `$store` (with `reads()` and `writes()`) on database `$db`.
macro_rules! policy_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::policy::{PolicyDocument, PolicyVersion};
            use $crate::store::policies::version_from_row;
            use $crate::store::sql::{conflict_or, found, page_binds, to_u64};
            use $crate::store::{Page, PolicyStore, StoreError, StoreResult};

            const SELECT: &str = "SELECT p.id, p.name, v.version, v.document, v.created_at FROM policies p JOIN policy_versions v ON v.policy_id = p.id";

            fn document_json(document: &PolicyDocument) -> String {
                serde_json::to_string(document).unwrap_or_else(|_| "{}".into())
            }

            /// One version of one policy, read through `exec` (the pool, or a transaction that just wrote it).
            async fn version_in<'e>(
                exec: impl sqlx::Executor<'e, Database = $db>,
                id: &str,
                version: i64,
            ) -> StoreResult<PolicyVersion> {
                let sql = format!("{SELECT} WHERE p.id = $1 AND v.version = $2");
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(version)
                    .fetch_optional(exec)
                    .await?;
                row.as_ref()
                    .map(version_from_row)
                    .transpose()?
                    .ok_or(StoreError::NotFound)
            }

            impl $store {
                async fn latest_where(&self, clause: &str, value: &str) -> StoreResult<PolicyVersion> {
                    let sql = format!("{SELECT} WHERE {clause} = $1 AND v.version = p.current_version");
                    let row = sqlx::query(&sql)
                        .bind(value)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref()
                        .map(version_from_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                }
            }

            #[async_trait]
            impl PolicyStore for $store {
                async fn create_policy(
                    &self,
                    id: &str,
                    name: &str,
                    document: &PolicyDocument,
                ) -> StoreResult<PolicyVersion> {
                    let now = $crate::run::now_ms();
                    let mut tx = self.writes().begin().await?;
                    sqlx::query(
                        "INSERT INTO policies (id, name, current_version, created_at) VALUES ($1, $2, 1, $3)",
                    )
                    .bind(id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "a policy with this name already exists"))?;
                    sqlx::query("INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES ($1, 1, $2, $3)")
                        .bind(id)
                        .bind(document_json(document))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let created = version_in(&mut *tx, id, 1).await?;
                    tx.commit().await?;
                    Ok(created)
                }

                async fn add_policy_version(
                    &self,
                    id: &str,
                    document: &PolicyDocument,
                ) -> StoreResult<PolicyVersion> {
                    let mut tx = self.writes().begin().await?;
                    let row = sqlx::query("UPDATE policies SET current_version = current_version + 1 WHERE id = $1 RETURNING current_version")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let version: i64 = row.try_get(0)?;
                    sqlx::query("INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id)
                        .bind(version)
                        .bind(document_json(document))
                        .bind($crate::run::now_ms())
                        .execute(&mut *tx)
                        .await?;
                    let added = version_in(&mut *tx, id, version).await?;
                    tx.commit().await?;
                    Ok(added)
                }

                async fn get_policy(&self, id: &str) -> StoreResult<PolicyVersion> {
                    self.latest_where("p.id", id).await
                }

                async fn policy_by_name(&self, name: &str) -> StoreResult<PolicyVersion> {
                    self.latest_where("p.name", name).await
                }

                async fn policy_version(&self, id: &str, version: i64) -> StoreResult<PolicyVersion> {
                    version_in(self.reads(), id, version).await
                }

                async fn policy_versions(&self, id: &str) -> StoreResult<Vec<PolicyVersion>> {
                    let sql = format!("{SELECT} WHERE p.id = $1 ORDER BY v.version DESC");
                    let rows = sqlx::query(&sql).bind(id).fetch_all(self.reads()).await?;
                    if rows.is_empty() {
                        return Err(StoreError::NotFound);
                    }
                    rows.iter().map(version_from_row).collect()
                }

                async fn list_policies(
                    &self,
                    name: Option<&str>,
                    page: Page,
                ) -> StoreResult<(Vec<PolicyVersion>, u64)> {
                    let (limit, offset) = page_binds(page);
                    let sql = format!(
                        "{SELECT} WHERE v.version = p.current_version AND (CAST($1 AS TEXT) IS NULL OR p.name = $1) ORDER BY p.created_at DESC, p.id DESC LIMIT $2 OFFSET $3"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(name)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(self.reads())
                        .await?;
                    let total: i64 =
                        sqlx::query("SELECT COUNT(*) FROM policies WHERE (CAST($1 AS TEXT) IS NULL OR name = $1)")
                            .bind(name)
                            .fetch_one(self.reads())
                            .await?
                            .try_get(0)?;
                    let policies = rows
                        .iter()
                        .map(version_from_row)
                        .collect::<StoreResult<_>>()?;
                    Ok((policies, to_u64(total)))
                }

                async fn delete_policy(&self, id: &str) -> StoreResult<()> {
                    let result = sqlx::query("DELETE FROM policies WHERE id = $1")
                        .bind(id)
                        .execute(self.writes())
                        .await?;
                    found(result.rows_affected())
                }
            }
        };
    };
}

pub(in crate::store) use policy_store;
