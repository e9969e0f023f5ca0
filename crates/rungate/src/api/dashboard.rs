//! The web dashboard, served by the gateway itself: `dashboard/` in the repository is a small
//! Preact + TypeScript app that Vite bundles into `dashboard/dist` (committed, and rebuilt and
//! compared in CI), and this module embeds that folder in the binary (cargo feature
//! `dashboard`, on by default), so there is no second server to deploy.
//!
//! Bundled assets carry a content hash in their names and are cached for a year; every other
//! `GET` outside `/api` and `/v1` answers `index.html` (the app routes on the client, so
//! `/runs/task-42` can be reloaded and bookmarked), never cached, so a new gateway's dashboard
//! is picked up at once. The page may talk to its own origin only (CSP); it signs in through
//! `POST /api/session` and holds nothing but an HttpOnly cookie.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The answer for a `GET` of `path` that no API route took, or `None` when the path is not
/// the dashboard's (the caller answers 404).
pub fn serve(path: &str) -> Option<Response> {
    if is_api(path) {
        return None;
    }
    let asset = path.trim_start_matches('/');
    if let Some(file) = asset_named(asset) {
        return Some(answer(file, kind_of(asset), IMMUTABLE));
    }
    // A missing hashed asset is a 404, not the app: a stale page must not get HTML for a script.
    if asset.starts_with("assets/") {
        return None;
    }
    asset_named("index.html").map(|index| answer(index, "text/html; charset=utf-8", REVALIDATE))
}

/// Whether this build carries the dashboard (`rungate start` says so in its log).
pub const fn built() -> bool {
    cfg!(feature = "dashboard")
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn is_api(path: &str) -> bool {
    ["/api", "/v1"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn kind_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn answer(
    bytes: std::borrow::Cow<'static, [u8]>,
    kind: &'static str,
    cache: &'static str,
) -> Response {
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(feature = "dashboard")]
fn asset_named(path: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    #[derive(rust_embed::RustEmbed)]
    #[folder = "../../dashboard/dist"]
    struct Dist;
    Dist::get(path).map(|file| file.data)
}

#[cfg(not(feature = "dashboard"))]
fn asset_named(_path: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_never_the_dashboard() {
        for path in [
            "/api",
            "/api/runs",
            "/v1",
            "/v1/chat/completions",
            "/v1/nope",
        ] {
            assert!(serve(path).is_none(), "{path}");
        }
    }

    #[test]
    fn asset_types_follow_the_extension() {
        assert_eq!(
            kind_of("assets/index-1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(kind_of("assets/index-1.css"), "text/css; charset=utf-8");
        assert_eq!(kind_of("x"), "application/octet-stream");
    }
}
