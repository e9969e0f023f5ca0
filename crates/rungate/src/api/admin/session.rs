//! `/api/session`: the dashboard's login. A page that kept the admin password or token itself
//! (in `localStorage`, say) would hand it to any script that ever runs on the page; instead the
//! dashboard trades it once for a session whose random secret lives in an HttpOnly cookie no
//! script can read, which ends on its own after 12 hours, on logout, or when the admin token it
//! was opened with is revoked. `api::auth` accepts the cookie in place of a bearer credential,
//! with the session's scopes and actor, so the audit still says who approved.
//!
//! Logging in needs `x-rungate-dashboard: 1` like every cookie-authenticated change: otherwise a
//! cross-site form could log the victim's browser into the attacker's session (login CSRF).
//! Logging out needs nothing: holding the cookie is all it takes to end its session.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{created, item, new_id, parse_body};
use crate::api::auth::{
    Grant, SESSION_COOKIE, admin_grant, admin_token_grant, from_dashboard, password_check,
    password_grant, session_cookies,
};
use crate::api::call::read_body;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::run::{now_ms, rfc3339};
use crate::security::{TokenKind, generate_token, hash_token};
use crate::store::DashboardSession;

/// How long a session lasts: a working day, after which the dashboard asks to log in again.
const SESSION_TTL_S: i64 = 12 * 60 * 60;

/// Exactly one of the two admin credentials. Not `Debug`: it holds one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    password: Option<String>,
    token: Option<String>,
}

fn render(grant: &Grant) -> Value {
    json!({"actor": grant.actor, "scopes": grant.scopes, "expires_at": grant.expires_at_ms.map(rfc3339)})
}

/// `Set-Cookie` for the session cookie; `Max-Age=0` with an empty value deletes it.
fn session_cookie(value: &str, max_age_s: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .map_err(|e| ApiError::Internal(format!("session cookie: {e}")))
}

#[utoipa::path(post, path = "/session", tag = "admin",
    responses((status = 201, description = "logged in: `{\"data\":{\"actor\",\"scopes\",\"expires_at\"}}` and the HttpOnly `rungate_session` cookie; body `{\"password\"}` or `{\"token\"}`, header `x-rungate-dashboard: 1`"),
              (status = 401, description = "wrong password or unknown/revoked admin token"),
              (status = 403, description = "csrf_header_missing")))]
pub async fn create_session(
    State(gw): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if !from_dashboard(&parts.headers) {
        return Err(ApiError::CsrfHeaderMissing);
    }
    let bytes = read_body(body, &parts.headers, gw.config.max_body_bytes).await?;
    let body: LoginBody = parse_body(&bytes)?;
    let password = body.password;
    let mut grant = match (&password, body.token) {
        (Some(password), None) => {
            password_grant(&gw, password).ok_or(ApiError::AdminUnauthorized)?
        }
        (None, Some(token)) => admin_token_grant(&gw, &token).await?,
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `password` (the dashboard password) or `token` (an admin token)",
            ));
        }
    };
    let now = now_ms();
    // Housekeeping, cheap and rare enough to do here: logins are when sessions pile up.
    gw.stores.sessions.delete_ended_sessions(now).await?;
    let secret = generate_token(TokenKind::Session);
    let session = DashboardSession {
        id: new_id("ses"),
        token_hash: hash_token(&secret),
        actor: grant.actor.clone(),
        admin_token_id: grant.admin_token_id.clone(),
        password_check: password.map(|password| password_check(&password, &secret)),
        scopes: grant.scopes.clone(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(SESSION_TTL_S * 1000),
        revoked_at_ms: None,
    };
    gw.stores.sessions.create_session(&session).await?;
    tracing::info!(actor = %session.actor, session_id = %session.id, "dashboard session opened");
    grant.expires_at_ms = Some(session.expires_at_ms);
    let mut response = created(render(&grant));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&secret, SESSION_TTL_S)?);
    Ok(response)
}

#[utoipa::path(get, path = "/session", tag = "admin",
    responses((status = 200, description = "who the presented admin credential is: `{\"data\":{\"actor\",\"scopes\",\"expires_at\"}}` (`expires_at` null for bearer credentials)"),
              (status = 401, description = "no admin credential")))]
pub async fn get_session(State(gw): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    let grant = admin_grant(&gw, &parts).await?;
    Ok(item(render(&grant)))
}

#[utoipa::path(delete, path = "/session", tag = "admin",
    responses((status = 204, description = "logged out: the cookie's session is revoked and the cookie cleared")))]
pub async fn end_session(State(gw): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    let now = now_ms();
    for secret in session_cookies(&parts.headers) {
        gw.stores
            .sessions
            .revoke_session(&hash_token(secret), now)
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie("", 0)?)],
    )
        .into_response())
}
