//! Who is calling. Agents present `Authorization: Bearer rg_agt_…` (or `x-api-key`, as the
//! Anthropic SDKs send it); admins present `rg_adm_…` tokens with scopes, or the dashboard
//! password. The two never overlap: an agent token is refused on `/api/*` and an admin token
//! on `/v1/*`, so a compromised agent cannot approve its own gates or read other runs.
//!
//! The dashboard in a browser presents neither: it holds the `rungate_session` cookie of a
//! session opened with one of the admin credentials (`api::admin::session`), which grants that
//! credential's scopes under its actor. The browser attaches a cookie to requests on its own,
//! so a cookie-authenticated request that changes anything must also carry
//! `x-rungate-dashboard: 1`: a cross-site form or image cannot set a custom header (SameSite
//! already keeps the cookie off cross-site requests; the header still holds where SameSite
//! does not, such as a sibling subdomain). A bearer credential is only ever attached by its
//! holder, so it needs no such header.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::Gateway;
use crate::run::now_ms;
use crate::security::hash_token;
use crate::store::{AdminToken, Agent, Scope, StoreError, StoreResult};

/// The cookie that carries a dashboard session's secret.
pub const SESSION_COOKIE: &str = "rungate_session";

/// The header (value `1`) the dashboard sends with every change and with its login.
pub const DASHBOARD_HEADER: &str = "x-rungate-dashboard";

const SESSION_PREFIX: &str = "rg_ses_";

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

/// What an admin credential grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub actor: String,
    pub scopes: Vec<Scope>,
    /// The admin token behind the credential; `None` for the dashboard password.
    pub admin_token_id: Option<String>,
    /// When a session ends; bearer credentials last until revoked.
    pub expires_at_ms: Option<i64>,
}

impl Grant {
    /// Whether it grants at least one of `accepted`; else the refusal naming the first.
    fn allows(&self, accepted: &[Scope]) -> Result<(), ApiError> {
        if accepted.iter().any(|scope| scope.granted_by(&self.scopes)) {
            return Ok(());
        }
        let required = accepted.first().map_or("read", |scope| scope.as_str());
        Err(ApiError::Forbidden { required })
    }
}

/// Checks the admin credential and that it grants `required`.
pub async fn authorize_admin(
    gw: &Gateway,
    request: &Parts,
    required: Scope,
) -> Result<Admin, ApiError> {
    authorize_admin_any(gw, request, &[required]).await
}

/// Checks the admin credential and that it grants at least one of `accepted` (the first is
/// named in the refusal).
pub async fn authorize_admin_any(
    gw: &Gateway,
    request: &Parts,
    accepted: &[Scope],
) -> Result<Admin, ApiError> {
    let grant = admin_grant(gw, request).await?;
    grant.allows(accepted)?;
    Ok(Admin { actor: grant.actor })
}

/// The admin credential the request presents and what it grants: a bearer credential when
/// there is one, else the session cookie (which needs the dashboard header on a change).
pub async fn admin_grant(gw: &Gateway, request: &Parts) -> Result<Grant, ApiError> {
    if let Some(token) = presented_token(&request.headers) {
        return match password_grant(gw, token) {
            Some(grant) => Ok(grant),
            None => admin_token_grant(gw, token).await,
        };
    }
    let grant = cookie_grant(gw, &request.headers).await?;
    if changes_state(&request.method) && !from_dashboard(&request.headers) {
        return Err(ApiError::CsrfHeaderMissing);
    }
    Ok(grant)
}

/// All scopes under `admin:dashboard` when `candidate` is the configured dashboard password.
pub fn password_grant(gw: &Gateway, candidate: &str) -> Option<Grant> {
    let password = gw.config.dashboard_password.as_ref()?;
    // Compare digests so the comparison time does not depend on the password's prefix.
    (Sha256::digest(candidate.as_bytes()) == Sha256::digest(password.expose().as_bytes())).then(
        || Grant {
            actor: "admin:dashboard".into(),
            scopes: vec![Scope::Read, Scope::Write, Scope::Approve],
            admin_token_id: None,
            expires_at_ms: None,
        },
    )
}

/// What a password session keeps to prove it was opened with the password configured now:
/// SHA-256 over the password and the session's secret (which only the cookie holds), so a
/// changed password ends every session opened with the old one.
pub fn password_check(password: &str, session_secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(password.as_bytes());
    digest.update([0]);
    digest.update(session_secret.as_bytes());
    hex::encode(digest.finalize())
}

/// The scopes of the unrevoked admin token `token`; 401 for anything else.
pub async fn admin_token_grant(gw: &Gateway, token: &str) -> Result<Grant, ApiError> {
    if !token.starts_with("rg_adm_") {
        return Err(ApiError::AdminUnauthorized);
    }
    let found = gw
        .stores
        .admin_tokens
        .admin_token_by_hash(&hash_token(token))
        .await;
    let record = unrevoked(found)?.ok_or(ApiError::AdminUnauthorized)?;
    Ok(Grant {
        actor: format!("admin:{}", record.id),
        scopes: record.scopes,
        admin_token_id: Some(record.id),
        expires_at_ms: None,
    })
}

/// The token when it exists and is not revoked.
fn unrevoked(found: StoreResult<AdminToken>) -> Result<Option<AdminToken>, ApiError> {
    match found {
        Ok(record) if !record.revoked => Ok(Some(record)),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The first live session among the request's session cookies; 401 when there is none. A
/// session lives while it is unexpired and unrevoked and its credential still works: its admin
/// token unrevoked, or for a password session, a dashboard password still configured.
async fn cookie_grant(gw: &Gateway, headers: &HeaderMap) -> Result<Grant, ApiError> {
    let now = now_ms();
    for secret in session_cookies(headers).filter(|s| s.starts_with(SESSION_PREFIX)) {
        let Some(session) = gw
            .stores
            .sessions
            .session_by_hash(&hash_token(secret), now)
            .await?
        else {
            continue;
        };
        let credential_works = match (&session.admin_token_id, &session.password_check) {
            (Some(id), _) => unrevoked(gw.stores.admin_tokens.get_admin_token(id).await)?.is_some(),
            (None, Some(check)) => gw
                .config
                .dashboard_password
                .as_ref()
                .is_some_and(|password| *check == password_check(password.expose(), secret)),
            (None, None) => false,
        };
        if credential_works {
            return Ok(Grant {
                actor: session.actor,
                scopes: session.scopes,
                admin_token_id: session.admin_token_id,
                expires_at_ms: Some(session.expires_at_ms),
            });
        }
    }
    Err(ApiError::AdminUnauthorized)
}

/// The values of the session cookie, in the order the request lists them. A `Cookie` header
/// holds several `name=value` pairs, and HTTP/2 clients may send several `Cookie` headers.
pub fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (name.trim() == SESSION_COOKIE).then_some(value)
        })
}

/// Whether the request carries `x-rungate-dashboard: 1`.
pub fn from_dashboard(headers: &HeaderMap) -> bool {
    headers
        .get(DASHBOARD_HEADER)
        .is_some_and(|value| value.as_bytes().trim_ascii() == b"1")
}

/// Anything but a read: the methods a cookie alone may not authorize.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_other_cookies_and_headers() {
        let check = |pairs: &[(&'static str, &'static str)], expected: &[&str]| {
            let map = headers(pairs);
            assert_eq!(
                session_cookies(&map).collect::<Vec<_>>(),
                expected,
                "{pairs:?}"
            );
        };
        check(&[], &[]);
        check(&[("cookie", "rungate_session=rg_ses_a")], &["rg_ses_a"]);
        check(
            &[("cookie", "theme=dark; rungate_session=rg_ses_a; lang=en")],
            &["rg_ses_a"],
        );
        check(
            &[("cookie", "theme=dark;rungate_session=\"rg_ses_a\"")],
            &["rg_ses_a"],
        );
        check(
            &[
                ("cookie", "theme=dark"),
                ("cookie", "rungate_session=rg_ses_b"),
            ],
            &["rg_ses_b"],
        );
        check(
            &[(
                "cookie",
                "rungate_session=rg_ses_a; rungate_session=rg_ses_b",
            )],
            &["rg_ses_a", "rg_ses_b"],
        );
        check(
            &[(
                "cookie",
                "my_rungate_session=x; rungate_session_old=y; broken",
            )],
            &[],
        );
    }

    #[test]
    fn only_reads_go_without_the_dashboard_header() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!changes_state(&method), "{method}");
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(changes_state(&method), "{method}");
        }
        assert!(from_dashboard(&headers(&[("x-rungate-dashboard", "1")])));
        assert!(!from_dashboard(&headers(&[("x-rungate-dashboard", "yes")])));
        assert!(!from_dashboard(&headers(&[])));
    }
}
