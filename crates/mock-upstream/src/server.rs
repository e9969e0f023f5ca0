//! Binding, accepting and stopping: the part of the mock a test holds in its hand.
//!
//! The accept loop is written out (rather than `axum::serve`) for two reasons. Every accepted socket
//! gets `TCP_NODELAY`, or small SSE writes wait on Nagle and the benchmark measures the kernel instead of
//! the gateway. And every connection task lives in a `JoinSet` owned by the loop, so stopping the server
//! (drop or [`MockUpstream::shutdown`]) also ends connections in flight, `"hang"` requests included; a
//! test never leaks a task that outlives its server.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::plan::Script;
use crate::record::{self, RecordedRequest, Recorder};
use crate::{anthropic, gemini, openai, responses};

/// How the server behaves when a request does not say otherwise through its `"mock"` object.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// Wait before the first byte of every response.
    pub latency: Duration,
    /// Wait between two events of a streamed response.
    pub chunk_delay: Duration,
    /// When set, requests must carry this key (`Authorization: Bearer K` for OpenAI routes,
    /// `x-api-key: K` or the bearer form for Anthropic routes, `x-goog-api-key: K` or `?key=K` for
    /// Gemini routes) or get a 401.
    pub require_key: Option<String>,
    /// A `"mock"` object applied to every model call, e.g. `{"status": 503}` for a primary upstream
    /// that always fails, whatever body the gateway translated. A request's own `"mock"` members win
    /// member by member (a member set to `null` clears the default's). Checked when the server
    /// starts: an invalid script makes [`MockUpstream::start`] fail with `InvalidInput`.
    pub default_script: Option<serde_json::Value>,
}

/// Whether the server keeps every request for [`MockUpstream::requests`].
///
/// Tests want `On`; a long benchmark run wants `Off`, or the log grows with every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recording {
    /// Keep every request.
    #[default]
    On,
    /// Keep only the count.
    Off,
}

/// State every handler shares.
pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    /// `config.default_script`, checked.
    pub(crate) default_script: Option<Script>,
    pub(crate) recorder: Recorder,
    next_id: AtomicU64,
}

impl Shared {
    /// A number unique within this server, for ids such as `chatcmpl-mock-<n>`.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running mock server. Dropping it stops the server and every connection it holds open.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    /// Bind `127.0.0.1:0`, record every request, and serve in a background task.
    pub async fn start(config: MockConfig) -> io::Result<MockUpstream> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start_on(listener, config, Recording::On).await
    }

    /// Serve on a listener the caller bound (another address, or a fixed port), choosing whether
    /// requests are recorded.
    pub async fn start_on(
        listener: TcpListener,
        config: MockConfig,
        recording: Recording,
    ) -> io::Result<MockUpstream> {
        let addr = listener.local_addr()?;
        let default_script = config
            .default_script
            .as_ref()
            .map(Script::parse)
            .transpose()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        let shared = Arc::new(Shared {
            config,
            default_script,
            recorder: Recorder::new(recording == Recording::On),
            next_id: AtomicU64::new(1),
        });
        let task = tokio::spawn(accept_loop(listener, router(Arc::clone(&shared))));
        Ok(MockUpstream { addr, shared, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without `/v1`: clients append `/v1/...` themselves.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// How many requests have arrived, counted whether or not recording is on.
    pub fn request_count(&self) -> usize {
        self.shared.recorder.count()
    }

    /// Stop accepting, end open connections, and wait until the server task is gone.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task can only end by this abort; its outcome carries nothing to report.
        let _cancelled = (&mut self.task).await;
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .field("request_count", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::post_chat_completions))
        .route("/v1/models", get(openai::get_models))
        .route("/v1/messages", post(anthropic::post_messages))
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::post_count_tokens),
        )
        .route("/v1/responses", post(responses::post_responses))
        // One segment, `{model}:{method}`: the handler splits it (and answers 404 for a method it
        // does not serve) so every refusal is in Google's error shape.
        .route("/v1beta/models/{call}", post(gemini::post_model_call))
        .route("/v1/models/{call}", post(gemini::post_model_call))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            record::record,
        ))
        // Tests of the gateway's own body limit send large bodies; the mock must not be the one to refuse.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn accept_loop(listener: TcpListener, app: Router) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(Arc::clone(&builder), stream, app.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "mock-upstream: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    app: Router,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "mock-upstream: cannot set TCP_NODELAY");
    }
    let service = TowerToHyperService::new(app);
    if let Err(error) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        // Clients hanging up and `die_after_events` both land here; neither is the mock's fault.
        tracing::debug!(%error, "mock-upstream: connection ended with an error");
    }
}
