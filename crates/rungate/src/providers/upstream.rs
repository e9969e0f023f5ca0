//! The one pooled HTTP client to every upstream. Requests carry the original body bytes; the
//! agent's Rungate token never leaves the gateway — the provider key replaces it. Timeouts are
//! split: `timeout` bounds the wait for response headers, and the stream reader bounds each gap
//! between chunks, so a long healthy stream is never cut while a stalled one is.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::Provider;
use crate::security::Secret;

/// Client headers that are meaningful to the provider and safe to pass on.
const FORWARDED_HEADERS: &[&str] = &[
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "accept",
    "user-agent",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-retry-count",
    "x-stainless-helper-method",
];

const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Why an upstream call produced no provider answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    #[error("cannot reach {provider}: {message}")]
    Unreachable {
        provider: &'static str,
        message: String,
    },
    #[error("{provider} answered {status}: {message}")]
    ServerError {
        provider: &'static str,
        status: u16,
        message: String,
    },
}

/// One call to forward.
pub struct ForwardRequest<'a> {
    pub provider: Provider,
    pub base_url: &'a reqwest::Url,
    pub api_key: Option<&'a Secret<String>>,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path_and_query: &'a str,
    pub client_headers: &'a HeaderMap,
    pub body: Bytes,
    /// Bound on the wait for the response head; `None` is the gateway's upstream timeout.
    pub timeout: Option<Duration>,
}

/// The provider's answer, body not yet read.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: reqwest::Response,
}

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    timeout: Duration,
}

impl Upstream {
    pub fn new(timeout: Duration) -> Result<Upstream, reqwest::Error> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Upstream { client, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the request and waits for the response head.
    pub async fn send(&self, req: ForwardRequest<'_>) -> Result<UpstreamResponse, UpstreamError> {
        let provider = req.provider.name();
        // The base's path (say `/openai`) and the call's path, joined; no re-parse of the host.
        let (path, query) = match req.path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (req.path_and_query, None),
        };
        let mut url = req.base_url.clone();
        let joined = format!("{}{path}", req.base_url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url.set_query(query);
        let mut headers = HeaderMap::with_capacity(FORWARDED_HEADERS.len() + 3);
        // A vendor's own headers go only to that vendor (a call failed over to another one
        // keeps the generic ones).
        let foreign = |name: &str| match req.provider {
            Provider::Anthropic => name.starts_with("openai-"),
            Provider::OpenAi | Provider::OpenAiCompatible => name.starts_with("anthropic-"),
            Provider::Gemini => name.starts_with("openai-") || name.starts_with("anthropic-"),
        };
        for name in FORWARDED_HEADERS.iter().filter(|n| !foreign(n)) {
            if let Some(value) = req.client_headers.get(*name) {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        apply_auth(&mut headers, req.provider, req.api_key);
        let call = self.client.post(url).headers(headers).body(req.body).send();
        let after = req.timeout.unwrap_or(self.timeout);
        let response = match tokio::time::timeout(after, call).await {
            Err(_) => return Err(UpstreamError::Timeout { provider, after }),
            Ok(Err(err)) if err.is_timeout() => {
                return Err(UpstreamError::Timeout { provider, after });
            }
            Ok(Err(err)) => {
                return Err(UpstreamError::Unreachable {
                    provider,
                    message: error_chain(&err),
                });
            }
            Ok(Ok(response)) => response,
        };
        Ok(UpstreamResponse {
            status: response.status(),
            headers: response.headers().clone(),
            body: response,
        })
    }
}

fn apply_auth(headers: &mut HeaderMap, provider: Provider, key: Option<&Secret<String>>) {
    if provider == Provider::Anthropic && !headers.contains_key("anthropic-version") {
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION),
        );
    }
    let Some(key) = key else { return };
    let (name, value) = match provider {
        Provider::OpenAi | Provider::OpenAiCompatible => (
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", key.expose())),
        ),
        Provider::Anthropic => (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_str(key.expose()),
        ),
        Provider::Gemini => (
            HeaderName::from_static("x-goog-api-key"),
            HeaderValue::from_str(key.expose()),
        ),
    };
    let Ok(mut value) = value else { return };
    value.set_sensitive(true);
    headers.insert(name, value);
}

/// The full cause chain of a reqwest error ("error sending request: connection refused").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
