//! The operator commands' view of a running gateway: one HTTP client, the admin token, and the
//! admin API's error envelope turned into `<status> <code>: <message>`. Knows URLs and JSON,
//! nothing about tables.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, Url};
use serde_json::Value;

/// The file `rungate start` writes on first boot, read from the current directory.
pub const TOKEN_FILE: &str = "rungate.admin-token";

/// An answer of the admin API that was not a success, as the API stated it.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    /// Reads `{"error":{"code","type","message"}}`; any other body becomes the message.
    fn from_body(status: reqwest::StatusCode, body: &str) -> ApiFailure {
        let error = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").cloned());
        let field = |name: &str| {
            error
                .as_ref()
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let fallback_code = status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase()
            .replace(' ', "_");
        let body_text: String = body.trim().chars().take(500).collect();
        ApiFailure {
            status: status.as_u16(),
            code: field("code")
                .or_else(|| field("type"))
                .unwrap_or(fallback_code),
            message: field("message").unwrap_or(body_text),
        }
    }

    /// A next step for the operator, when the status suggests one.
    pub fn hint(&self) -> Option<&'static str> {
        match self.status {
            401 => Some(
                "the gateway refused the admin token: check --token / RUNGATE_ADMIN_TOKEN or ./rungate.admin-token",
            ),
            403 => Some("the admin token lacks the scope this command needs"),
            _ => None,
        }
    }
}

/// Finds the admin token: the flag or env value first, else `./rungate.admin-token`.
pub fn resolve_token(given: Option<String>, dir: &Path) -> anyhow::Result<String> {
    if let Some(token) = given.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(contents) if !contents.trim().is_empty() => Ok(contents.trim().to_owned()),
        Ok(_) => anyhow::bail!("the admin token file {} is empty", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no admin token: pass --token <rg_adm_...>, set RUNGATE_ADMIN_TOKEN, or run this \
             command in the directory where `rungate start` wrote {TOKEN_FILE} on first boot"
        ),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A client for one gateway's `/api/*`.
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl AdminClient {
    pub fn new(base_url: &str, token: String) -> anyhow::Result<AdminClient> {
        let base = Url::parse(base_url.trim())
            .with_context(|| format!("--url {base_url:?} is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!(
                "--url {base_url:?} must be an http(s) URL such as http://127.0.0.1:8080"
            );
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("rungate-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(AdminClient { http, base, token })
    }

    /// `<base>/api/<segments...>`, each segment percent-encoded: run ids are chosen by agents
    /// and may contain `/`, `?` or spaces.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("api").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(Method::GET, self.url(segments, query), None)
            .await
    }

    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> anyhow::Result<Value> {
        self.send(Method::POST, self.url(segments, &[]), body).await
    }

    pub async fn put(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PUT, self.url(segments, &[]), Some(body))
            .await
    }

    /// POSTs a JSON file as it is on disk (the gateway may hash the exact bytes).
    pub async fn post_json_bytes(&self, segments: &[&str], body: Vec<u8>) -> anyhow::Result<Value> {
        let url = self.url(segments, &[]);
        let request = self
            .http
            .post(url.clone())
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.answer(Method::POST, url, request).await
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.answer(method, url, request).await
    }

    /// Sends `request` and reads the API's answer (its error envelope on a failure).
    async fn answer(
        &self,
        method: Method,
        url: Url,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the gateway at {}: is `rungate start` running there? (set --url or RUNGATE_URL)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {}: reading the answer", url.path()))?;
        if !status.is_success() {
            return Err(ApiFailure::from_body(status, &text).into());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {}: the answer is not JSON", url.path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn check(status: u16, body: &str, expected: &str) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        assert_eq!(ApiFailure::from_body(status, body).to_string(), expected);
    }

    #[test]
    fn api_errors_read_as_status_code_and_message() {
        check(
            404,
            r#"{"error":{"type":"not_found","code":"not_found","message":"run x not found"}}"#,
            "404 not_found: run x not found",
        );
        check(
            403,
            r#"{"error":{"type":"forbidden","message":"Insufficient scope. Required: write"}}"#,
            "403 forbidden: Insufficient scope. Required: write",
        );
        check(
            502,
            "Bad gateway from a load balancer",
            "502 bad_gateway: Bad gateway from a load balancer",
        );
    }

    #[test]
    fn ids_are_encoded_as_one_path_segment() -> anyhow::Result<()> {
        let client = AdminClient::new("http://127.0.0.1:8080/", "t".into())?;
        let url = client.url(&["runs", "a/b c?"], &[("status", "running".into())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/api/runs/a%2Fb%20c%3F?status=running"
        );
        Ok(())
    }

    #[test]
    fn token_comes_from_the_flag_then_the_file_then_an_explanation() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = resolve_token(None, dir.path()).map_err(|e| e.to_string());
        assert!(
            matches!(&missing, Err(m) if m.contains("RUNGATE_ADMIN_TOKEN") && m.contains(TOKEN_FILE))
        );
        std::fs::write(dir.path().join(TOKEN_FILE), "rg_adm_file\n")?;
        assert_eq!(resolve_token(None, dir.path())?, "rg_adm_file");
        assert_eq!(
            resolve_token(Some("rg_adm_flag".into()), dir.path())?,
            "rg_adm_flag"
        );
        Ok(())
    }
}
