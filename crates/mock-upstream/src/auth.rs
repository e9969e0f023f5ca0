//! The optional API-key check, in each provider's convention (a header, or Gemini's `?key=`).
//!
//! It exists so gateway tests can prove that the gateway swaps in the provider key it holds (and never
//! forwards the agent's own token): the mock then refuses anything but the expected key.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// OpenAI's convention: `Authorization: Bearer <key>`.
pub(crate) fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .any(|value| value.as_bytes().strip_prefix(b"Bearer ") == Some(key.as_bytes()))
}

/// Anthropic's convention: `x-api-key: <key>`; its SDK also accepts a bearer token, so the mock does too.
pub(crate) fn api_key_matches(headers: &HeaderMap, key: &str) -> bool {
    let in_x_api_key = headers
        .get_all("x-api-key")
        .iter()
        .any(|value| value.as_bytes() == key.as_bytes());
    in_x_api_key || bearer_matches(headers, key)
}

/// Google's convention: `x-goog-api-key: <key>`, or the `key` query parameter.
pub(crate) fn goog_key_matches(headers: &HeaderMap, query_key: Option<&str>, key: &str) -> bool {
    let in_header = headers
        .get_all("x-goog-api-key")
        .iter()
        .any(|value| value.as_bytes() == key.as_bytes());
    in_header || query_key == Some(key)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn openai_accepts_only_the_exact_bearer_key() {
        assert!(bearer_matches(
            &headers(&[("authorization", "Bearer k1")]),
            "k1"
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bearer k2")]),
            "k1"
        ));
        assert!(!bearer_matches(&headers(&[("authorization", "k1")]), "k1"));
        assert!(!bearer_matches(&headers(&[("x-api-key", "k1")]), "k1"));
        assert!(!bearer_matches(&headers(&[]), "k1"));
    }

    #[test]
    fn anthropic_accepts_x_api_key_or_bearer() {
        assert!(api_key_matches(&headers(&[("x-api-key", "k1")]), "k1"));
        assert!(api_key_matches(
            &headers(&[("authorization", "Bearer k1")]),
            "k1"
        ));
        assert!(!api_key_matches(&headers(&[("x-api-key", "k2")]), "k1"));
        assert!(!api_key_matches(&headers(&[]), "k1"));
    }

    #[test]
    fn gemini_accepts_x_goog_api_key_or_the_key_parameter() {
        assert!(goog_key_matches(
            &headers(&[("x-goog-api-key", "k1")]),
            None,
            "k1"
        ));
        assert!(goog_key_matches(&headers(&[]), Some("k1"), "k1"));
        assert!(!goog_key_matches(
            &headers(&[("x-goog-api-key", "k2")]),
            None,
            "k1"
        ));
        assert!(!goog_key_matches(&headers(&[]), Some("k2"), "k1"));
        let bearer = headers(&[("authorization", "Bearer k1")]);
        assert!(!goog_key_matches(&bearer, None, "k1"));
    }
}
