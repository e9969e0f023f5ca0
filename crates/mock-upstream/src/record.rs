//! Every request the mock receives, kept so a test can check what the gateway actually sent upstream:
//! the URL it called (path and query: which dialect, which model, `alt=sse`), the headers it added or
//! stripped, the body it forwarded byte for byte.
//!
//! Recording sits on the hot path of every benchmark request, so it stores the parts hyper already
//! parsed (`HeaderMap`, `Uri`, `Bytes` are reference-counted) and converts them to plain strings only
//! when a test asks. A server started with [`crate::Recording::Off`] keeps nothing but a count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::server::Shared;

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query string, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    /// Header names are lowercase; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON, or `None` if it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The path without its query string, e.g. `/v1beta/models/gemini-2.0-flash:streamGenerateContent`:
    /// which endpoint, hence which dialect, the gateway called.
    pub fn path_without_query(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }

    /// The query string without the `?`, if the request had one.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The first value of query parameter `name`, percent-decoded (Gemini's `alt`, `key`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::query::param(self.query()?, name)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What is kept per request until a test reads it.
struct Captured {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Captured {
    fn to_recorded(&self) -> RecordedRequest {
        let path = self
            .uri
            .path_and_query()
            .map_or_else(|| self.uri.path(), |pq| pq.as_str());
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        RecordedRequest {
            method: self.method.as_str().to_owned(),
            path: path.to_owned(),
            headers,
            body: self.body.clone(),
        }
    }
}

/// The request log of one server.
pub(crate) struct Recorder {
    /// `None` when recording is off: then only `count` moves.
    log: Option<Mutex<Vec<Captured>>>,
    count: AtomicUsize,
}

impl Recorder {
    pub(crate) fn new(keep: bool) -> Self {
        Self {
            log: keep.then(|| Mutex::new(Vec::new())),
            count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        let log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().map(Captured::to_recorded).collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Middleware: log the request (body included), then hand it on with the buffered body.
///
/// The count moves only after the request is in the log, so a test that waits for `request_count()`
/// to reach N finds N entries in `requests()`.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let recorder = &shared.recorder;
    let Some(log) = &recorder.log else {
        recorder.count.fetch_add(1, Ordering::AcqRel);
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let captured = Captured {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(captured);
    recorder.count.fetch_add(1, Ordering::AcqRel);
    next.run(Request::from_parts(parts, Body::from(body))).await
}
