//! Dashboard sessions: what a browser holds instead of an admin credential. Logging in with the
//! dashboard password or an admin token mints a random secret that lives only in an HttpOnly
//! cookie, so no page script (and no injected one) can read a long-lived credential; the store
//! keeps the secret's SHA-256 digest, who the session acts as, the scopes it grants and when it
//! ends. Sessions are ephemeral: `rungate db copy` leaves them behind and the operator logs in
//! again.

use async_trait::async_trait;

use super::StoreResult;
use super::admin_tokens::{Scope, scopes_from_column};
use super::sql::Columns;
use crate::security::TokenHash;

#[derive(Clone, Debug, PartialEq)]
pub struct DashboardSession {
    pub id: String,
    pub token_hash: TokenHash,
    /// Who the audit names for what the session does: `admin:dashboard` or `admin:<token id>`.
    pub actor: String,
    /// The admin token the session was opened with (`None` for the dashboard password). The
    /// API checks it on every request, so revoking the token ends its sessions.
    pub admin_token_id: Option<String>,
    /// For a password session, `password_check(password, secret)`: the API recomputes it with
    /// the configured password on every request, so changing the password ends the session.
    /// Keyed by the cookie's secret (never stored), so the column cannot be cracked offline.
    pub password_check: Option<String>,
    pub scopes: Vec<Scope>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &DashboardSession) -> StoreResult<()>;
    /// The session whose secret has this digest, if it is live at `now_ms`: neither revoked nor
    /// expired.
    async fn session_by_hash(
        &self,
        hash: &TokenHash,
        now_ms: i64,
    ) -> StoreResult<Option<DashboardSession>>;
    /// Ends the session (logout); false when no unrevoked session has this digest.
    async fn revoke_session(&self, hash: &TokenHash, at_ms: i64) -> StoreResult<bool>;
    /// Deletes the sessions that can no longer be used (expired by `now_ms`, or revoked); how
    /// many.
    async fn delete_ended_sessions(&self, now_ms: i64) -> StoreResult<u64>;
}

pub(super) fn session_from_row(row: &impl Columns) -> StoreResult<DashboardSession> {
    Ok(DashboardSession {
        id: row.col("id")?,
        token_hash: TokenHash(row.col("token_hash")?),
        actor: row.col("actor")?,
        admin_token_id: row.col("admin_token_id")?,
        password_check: row.col("password_check")?,
        scopes: scopes_from_column(&row.col::<String>("scopes")?)?,
        created_at_ms: row.col("created_at")?,
        expires_at_ms: row.col("expires_at")?,
        revoked_at_ms: row.col("revoked_at")?,
    })
}
