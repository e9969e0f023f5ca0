//! `SessionStore` for both SQL backends, written once in portable SQL like
//! `store::sql::admin_tokens`; `sqlite/sessions.rs` and `postgres/sessions.rs` expand it. The
//! lookup runs on every cookie-authenticated request, so it goes through the read pool; a
//! logout is committed before its answer, so the next request's read already sees it.

/// Implements `SessionStore` for `$store`, which must have `reads()` and `writes()` pools.
macro_rules! session_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use $crate::security::TokenHash;
            use $crate::store::admin_tokens::scopes_to_column;
            use $crate::store::sessions::session_from_row;
            use $crate::store::sql::conflict_or;
            use $crate::store::{DashboardSession, SessionStore, StoreResult};

            const COLUMNS: &str =
                "id, token_hash, actor, admin_token_id, password_check, scopes, created_at, expires_at, revoked_at";

            #[async_trait]
            impl SessionStore for $store {
                async fn create_session(&self, s: &DashboardSession) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO dashboard_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    );
                    sqlx::query(&sql)
                        .bind(&s.id)
                        .bind(&s.token_hash.0)
                        .bind(&s.actor)
                        .bind(&s.admin_token_id)
                        .bind(&s.password_check)
                        .bind(scopes_to_column(&s.scopes))
                        .bind(s.created_at_ms)
                        .bind(s.expires_at_ms)
                        .bind(s.revoked_at_ms)
                        .execute(self.writes())
                        .await
                        .map_err(|e| conflict_or(e, "session"))?;
                    Ok(())
                }

                async fn session_by_hash(
                    &self,
                    hash: &TokenHash,
                    now_ms: i64,
                ) -> StoreResult<Option<DashboardSession>> {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM dashboard_sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
                    );
                    let row = sqlx::query(&sql)
                        .bind(&hash.0)
                        .bind(now_ms)
                        .fetch_optional(self.reads())
                        .await?;
                    row.as_ref().map(session_from_row).transpose()
                }

                async fn revoke_session(&self, hash: &TokenHash, at_ms: i64) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE dashboard_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
                    )
                    .bind(at_ms)
                    .bind(&hash.0)
                    .execute(self.writes())
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_ended_sessions(&self, now_ms: i64) -> StoreResult<u64> {
                    let done = sqlx::query(
                        "DELETE FROM dashboard_sessions WHERE expires_at <= $1 OR revoked_at IS NOT NULL",
                    )
                    .bind(now_ms)
                    .execute(self.writes())
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}

pub(in crate::store) use session_store;
