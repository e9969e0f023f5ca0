//! A real gateway on 127.0.0.1:0 over a real SQLite file, in front of the Rust mock provider,
//! set up through the real admin API. Each test gets its own, so tests run in parallel.

use std::time::Duration;

use mock_upstream::{MockConfig, MockUpstream};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const ADMIN_PASSWORD: &str = "it-admin-password";
pub const PROVIDER_SECRET: &str = "sk-test-provider-secret";

pub struct Harness {
    pub url: String,
    pub mock: MockUpstream,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub openai_key: String,
    pub anthropic_key: String,
    pub policy_id: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Options a test may change from the defaults.
#[derive(Clone)]
pub struct Setup {
    pub extra_yaml: String,
    pub allowed_models: Value,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            extra_yaml: String::new(),
            allowed_models: json!(["gpt-4o-mini", "gpt-4o", "claude-sonnet-4*"]),
        }
    }
}

pub async fn start() -> TestResult<Harness> {
    start_with(Setup::default()).await
}

pub async fn start_with(setup: Setup) -> TestResult<Harness> {
    let mock = MockUpstream::start(MockConfig {
        require_key: Some(PROVIDER_SECRET.into()),
        ..MockConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let mut h = boot(mock, dir, &setup.extra_yaml).await?;
    let openai = h.admin_post("/api/provider-keys", json!({"provider": "openai", "name": "mock-openai", "api_key": PROVIDER_SECRET, "base_url": h.mock.base_url()})).await?;
    let anthropic = h.admin_post("/api/provider-keys", json!({"provider": "anthropic", "name": "mock-anthropic", "api_key": PROVIDER_SECRET, "base_url": format!("{}/v1", h.mock.base_url())})).await?;
    let policy = h
        .admin_post(
            "/api/policies",
            json!({"name": "it", "allowed_models": setup.allowed_models}),
        )
        .await?;
    h.openai_key = openai["data"]["id"].as_str().unwrap_or_default().to_owned();
    h.anthropic_key = anthropic["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    h.policy_id = policy["data"]["id"].as_str().unwrap_or_default().to_owned();
    Ok(h)
}

/// The database a test gateway keeps its data in: a SQLite file in `dir`, or — with
/// `RUNGATE_TEST_STORAGE=postgres`, which runs this whole suite on PostgreSQL — a schema of the
/// test server whose name is kept in `dir`, so a restarted gateway finds its data again.
fn storage_yaml(dir: &std::path::Path) -> TestResult<String> {
    if std::env::var("RUNGATE_TEST_STORAGE").as_deref() != Ok("postgres") {
        let path = dir.join("rungate.db");
        return Ok(format!(
            "storage:\n  type: sqlite\n  path: {}\n",
            path.display()
        ));
    }
    let marker = dir.join("pg-schema");
    let schema = match std::fs::read_to_string(&marker) {
        Ok(name) => name,
        Err(_) => {
            let name = format!("it_{:016x}", rand::random::<u64>());
            std::fs::write(&marker, &name)?;
            name
        }
    };
    let url =
        std::env::var("RUNGATE_TEST_PG_URL").unwrap_or_else(|_| crate::pg::DEFAULT_URL.to_owned());
    Ok(format!(
        "storage:\n  type: postgres\n  url: {url}\n  schema: {schema}\n  max_connections: 8\n"
    ))
}

/// True (after saying so) when the suite runs on PostgreSQL and the calling test inspects the
/// SQLite file itself; the SQLite pass of the suite runs it.
pub fn reads_the_sqlite_file(test: &str) -> bool {
    let on_postgres = std::env::var("RUNGATE_TEST_STORAGE").as_deref() == Ok("postgres");
    if on_postgres {
        eprintln!("{test}: runs in the SQLite pass (it reads the database file)");
    }
    on_postgres
}

/// Starts a gateway over `dir` (reusing its database, as after a restart).
pub async fn boot(
    mock: MockUpstream,
    dir: tempfile::TempDir,
    extra_yaml: &str,
) -> TestResult<Harness> {
    boot_with_env(mock, dir, extra_yaml, &[]).await
}

/// `boot` with `RUNGATE_*` environment overrides (which win over the file, as in production).
pub async fn boot_with_env(
    mock: MockUpstream,
    dir: tempfile::TempDir,
    extra_yaml: &str,
    env: &[(String, String)],
) -> TestResult<Harness> {
    let yaml = format!(
        "{}demo_provider: off\ndashboard_password: {ADMIN_PASSWORD}\nlog_level: warn\n{extra_yaml}",
        storage_yaml(dir.path())?
    );
    let config = rungate::config::Config::from_yaml(&yaml, env)?;
    let gw = rungate::app::build(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rungate::app::serve(gw, listener, async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    Ok(Harness {
        url,
        mock,
        http,
        dir,
        openai_key: String::new(),
        anthropic_key: String::new(),
        policy_id: String::new(),
        shutdown: Some(tx),
        server: Some(server),
    })
}

impl Harness {
    /// Stops the server gracefully (in-flight settlements finish) and hands back its parts.
    pub async fn stop(
        mut self,
    ) -> TestResult<(MockUpstream, tempfile::TempDir, String, String, String)> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok((
            self.mock,
            self.dir,
            self.openai_key,
            self.anthropic_key,
            self.policy_id,
        ))
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> TestResult<Value> {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> TestResult<Value> {
        self.admin(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn admin_get(&self, path: &str) -> TestResult<Value> {
        self.admin(reqwest::Method::GET, path, None).await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResult<Value> {
        admin_request(&self.http, &self.url, method, path, body).await
    }

    /// Adds a provider key (secret [`PROVIDER_SECRET`]) for `provider` at `base_url`; its id.
    pub async fn provider_key(
        &self,
        provider: &str,
        name: &str,
        base_url: &str,
    ) -> TestResult<String> {
        let created = self
            .admin_post(
                "/api/provider-keys",
                json!({"provider": provider, "name": name, "api_key": PROVIDER_SECRET, "base_url": base_url}),
            )
            .await?;
        Ok(created["data"]["id"]
            .as_str()
            .ok_or("no key id")?
            .to_owned())
    }

    /// Sends the agent's calls for `provider` to the key `key_id` (its only mapping).
    pub async fn map_key(&self, agent_id: &str, provider: &str, key_id: &str) -> TestResult {
        self.admin_put(
            &format!("/api/agents/{agent_id}"),
            json!({"provider_keys": {provider: key_id}}),
        )
        .await?;
        Ok(())
    }

    /// Creates a policy from `document` and an agent under it mapped to `keys`
    /// (`{provider: key id}`); the agent's token.
    pub async fn mapped_agent(
        &self,
        name: &str,
        document: Value,
        keys: Value,
    ) -> TestResult<String> {
        let mut document = document;
        document["name"] = json!(format!("{name}-policy"));
        let policy = self.admin_post("/api/policies", document).await?;
        let created = self
            .admin_post(
                "/api/agents",
                json!({"name": name, "policy_id": policy["data"]["id"], "provider_keys": keys}),
            )
            .await?;
        Ok(created["data"]["api_key"]
            .as_str()
            .ok_or("no api_key")?
            .to_owned())
    }

    /// Creates an agent mapped to both mock keys under the test policy; returns (id, token).
    pub async fn agent(&self, name: &str) -> TestResult<(String, String)> {
        self.agent_with(json!({"name": name})).await
    }

    pub async fn agent_with(&self, mut body: Value) -> TestResult<(String, String)> {
        if body.get("policy_id").is_none() {
            body["policy_id"] = json!(self.policy_id);
        }
        body["provider_keys"] = json!({"openai": self.openai_key, "anthropic": self.anthropic_key});
        let created = self.admin_post("/api/agents", body).await?;
        let id = created["data"]["id"]
            .as_str()
            .ok_or("no agent id")?
            .to_owned();
        let token = created["data"]["api_key"]
            .as_str()
            .ok_or("no api_key")?
            .to_owned();
        Ok((id, token))
    }

    pub async fn chat(
        &self,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> TestResult<Reply> {
        self.post_raw(
            "/v1/chat/completions",
            token,
            body.to_string().into_bytes(),
            headers,
        )
        .await
    }

    pub async fn messages(
        &self,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> TestResult<Reply> {
        self.post_raw(
            "/v1/messages",
            token,
            body.to_string().into_bytes(),
            headers,
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> TestResult<Reply> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    /// Polls until `check` holds or 10 s pass: tests wait on conditions, never on sleeps.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F) -> TestResult
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = TestResult<bool>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if check().await? {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("timed out waiting for: {what}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the gateway stored, as bytes to search for secrets: the SQLite file and its
    /// WAL, or every row of the test's PostgreSQL schema.
    pub async fn stored_bytes(&self) -> TestResult<Vec<Vec<u8>>> {
        let marker = self.dir.path().join("pg-schema");
        let Ok(schema) = std::fs::read_to_string(&marker) else {
            let db = std::fs::read(self.dir.path().join("rungate.db"))?;
            let wal = std::fs::read(self.dir.path().join("rungate.db-wal")).unwrap_or_default();
            return Ok(vec![db, wal]);
        };
        let url = std::env::var("RUNGATE_TEST_PG_URL")
            .unwrap_or_else(|_| crate::pg::DEFAULT_URL.to_owned());
        let pool = sqlx::PgPool::connect(&url).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&schema)
        .fetch_all(&pool)
        .await?;
        let mut rows = Vec::new();
        for table in tables {
            let text: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::text FROM {schema}.{table} t"
            ))
            .fetch_all(&pool)
            .await?;
            rows.extend(text.into_iter().map(String::into_bytes));
        }
        pool.close().await;
        Ok(rows)
    }

    pub async fn run(&self, run_id: &str) -> TestResult<Value> {
        Ok(self.admin_get(&format!("/api/runs/{run_id}")).await?["data"].clone())
    }

    pub async fn steps(&self, run_id: &str) -> TestResult<Vec<Value>> {
        let body = self.admin_get(&format!("/api/runs/{run_id}/steps")).await?;
        Ok(body["data"].as_array().cloned().unwrap_or_default())
    }

    /// The run's ledger balances (its spend equals the sum of its entries) and its audit chain verifies.
    pub async fn assert_books_balance(&self, run_id: &str) -> TestResult {
        let ledger = self
            .admin_get(&format!("/api/runs/{run_id}/ledger"))
            .await?;
        let sum = ledger["sum_usd"].as_f64().ok_or("no sum")?;
        let spend = ledger["run_spend_usd"].as_f64().ok_or("no spend")?;
        assert!(
            (sum - spend).abs() < 1e-12,
            "ledger sum {sum} != run spend {spend}"
        );
        let verify = self
            .admin_get(&format!("/api/runs/{run_id}/audit/verify"))
            .await?;
        assert_eq!(
            verify["data"]["valid"],
            json!(true),
            "audit chain: {verify}"
        );
        Ok(())
    }
}

/// An admin API call with the dashboard password that must succeed; its JSON body.
pub async fn admin_request(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> TestResult<Value> {
    let mut request = http
        .request(method.clone(), format!("{url}{path}"))
        .bearer_auth(ADMIN_PASSWORD);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{method} {path} → {status}: {body}").into());
    }
    Ok(body)
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn run_id(&self) -> String {
        self.header("x-rungate-run-id")
            .unwrap_or_default()
            .to_owned()
    }

    /// SSE events as (event name, data) pairs.
    pub fn events(&self) -> Vec<(String, String)> {
        let mut events = Vec::new();
        for block in self.text.split("\n\n") {
            let mut name = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.trim().to_owned());
                }
            }
            if !data.is_empty() {
                events.push((name, data.join("\n")));
            }
        }
        events
    }

    /// The JSON data of every event named `name` (`message` for unnamed ones), `[DONE]` left out.
    pub fn event_data(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(event, data)| event == name && data != "[DONE]")
            .filter_map(|(_, data)| serde_json::from_str(&data).ok())
            .collect()
    }

    /// The text an OpenAI chat stream carries, its chunks' content deltas joined.
    pub fn streamed_chat_text(&self) -> String {
        self.event_data("message")
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The text a Responses stream carries, its `response.output_text.delta` events joined.
    pub fn streamed_responses_text(&self) -> String {
        self.event_data("response.output_text.delta")
            .iter()
            .filter_map(|e| e["delta"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn rungate_trailer(&self) -> Option<Value> {
        self.events()
            .into_iter()
            .find(|(name, _)| name == "rungate")
            .and_then(|(_, d)| serde_json::from_str(&d).ok())
    }
}

pub fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}
