//! `/api/admin-tokens`: scoped operator credentials, shown once at creation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Paging, Params, created, item, list, missing, new_id, parse_body};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::run::{now_ms, rfc3339};
use crate::security::{TokenKind, generate_token, hash_token};
use crate::store::{AdminToken, Scope};

fn render(token: &AdminToken) -> Value {
    json!({
        "id": token.id, "name": token.name, "scopes": token.scopes, "token_prefix": token.token_prefix,
        "status": if token.revoked { "revoked" } else { "active" },
        "created_at": rfc3339(token.created_at_ms), "revoked_at": token.revoked_at_ms.map(rfc3339),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    scopes: Vec<Scope>,
}

#[derive(Debug, Deserialize)]
pub struct TokenFilter {
    status: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

#[utoipa::path(get, path = "/admin-tokens", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_tokens(
    State(gw): State<AppState>,
    parts: Parts,
    Params(f): Params<TokenFilter>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let revoked = match f.status.as_deref() {
        Some("revoked") => Some(true),
        Some("active") => Some(false),
        _ => None,
    };
    let (tokens, total) = gw
        .stores
        .admin_tokens
        .list_admin_tokens(revoked, f.paging.page())
        .await?;
    Ok(list(tokens.iter().map(render).collect(), total))
}

#[utoipa::path(post, path = "/admin-tokens", tag = "admin", responses((status = 201, description = "created; `token` is shown only here")))]
pub async fn create_token(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let body: TokenBody = parse_body(&body)?;
    if body.name.trim().is_empty() || body.scopes.is_empty() {
        return Err(ApiError::invalid(
            "name and at least one scope are required",
        ));
    }
    let secret = generate_token(TokenKind::Admin);
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let token = AdminToken {
        id: new_id("adm"),
        name: body.name,
        token_hash: hash_token(&secret),
        token_prefix: secret.chars().take(12).collect(),
        scopes,
        revoked: false,
        created_at_ms: now_ms(),
        revoked_at_ms: None,
    };
    gw.stores.admin_tokens.create_admin_token(&token).await?;
    super::webhooks::announce(&gw, "admin_token.created", render(&token)).await;
    let mut body = render(&token);
    body["token"] = json!(secret);
    Ok(created(body))
}

#[utoipa::path(get, path = "/admin-tokens/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn get_token(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let token = gw
        .stores
        .admin_tokens
        .get_admin_token(&id)
        .await
        .map_err(missing("admin token", &id))?;
    Ok(item(render(&token)))
}

#[utoipa::path(post, path = "/admin-tokens/{id}/revoke", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "revoked")))]
pub async fn revoke_token(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let token = gw
        .stores
        .admin_tokens
        .revoke_admin_token(&id, now_ms())
        .await
        .map_err(missing("admin token", &id))?;
    Ok(item(render(&token)))
}
