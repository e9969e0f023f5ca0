//! Who is calling. Agents present `Authorization: Bearer rg_agt_…` (or `x-api-key`, as the
//! Anthropic SDKs send it); admins present `rg_adm_…` tokens with scopes, or the dashboard
//! password. The two never overlap: an agent token is refused on `/api/*` and an admin token
//! on `/v1/*`, so a compromised agent cannot approve its own gates or read other runs.

use std::sync::Arc;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::Gateway;
use crate::security::hash_token;
use crate::store::{Agent, Scope, StoreError};

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

/// The agent behind the request's token; 401 for a missing, malformed or unknown token.
pub async fn authenticate_agent(gw: &Gateway, headers: &HeaderMap) -> Result<Arc<Agent>, ApiError> {
    let token = presented_token(headers).ok_or(ApiError::Unauthorized)?;
    if !(token.starts_with("rg_agt_") || token.starts_with("rg_sk_")) {
        return Err(ApiError::Unauthorized);
    }
    gw.directory
        .agent_by_token(token)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// Who performed an admin action, for the audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub actor: String,
}

/// Checks the admin credential and that it grants `required`.
pub async fn authorize_admin(
    gw: &Gateway,
    headers: &HeaderMap,
    required: Scope,
) -> Result<Admin, ApiError> {
    authorize_admin_any(gw, headers, &[required]).await
}

/// Checks the admin credential and that it grants at least one of `accepted` (the first is
/// named in the refusal).
pub async fn authorize_admin_any(
    gw: &Gateway,
    headers: &HeaderMap,
    accepted: &[Scope],
) -> Result<Admin, ApiError> {
    let token = presented_token(headers).ok_or(ApiError::AdminUnauthorized)?;
    if let Some(password) = &gw.config.dashboard_password {
        // Compare digests so the comparison time does not depend on the password's prefix.
        if Sha256::digest(token.as_bytes()) == Sha256::digest(password.expose().as_bytes()) {
            return Ok(Admin {
                actor: "admin:dashboard".into(),
            });
        }
    }
    if !token.starts_with("rg_adm_") {
        return Err(ApiError::AdminUnauthorized);
    }
    let record = match gw
        .stores
        .admin_tokens
        .admin_token_by_hash(&hash_token(token))
        .await
    {
        Ok(record) if !record.revoked => record,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::AdminUnauthorized),
        Err(err) => return Err(err.into()),
    };
    if !accepted
        .iter()
        .any(|scope| scope.granted_by(&record.scopes))
    {
        let required = accepted.first().map_or("read", |scope| scope.as_str());
        return Err(ApiError::Forbidden { required });
    }
    Ok(Admin {
        actor: format!("admin:{}", record.id),
    })
}
