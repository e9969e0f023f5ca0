//! The load generator: a fixed set of keep-alive HTTP/1.1 connections, one per concurrent worker,
//! each sending requests back to back and timing every one from send to the last byte of its body.
//!
//! Raw `hyper::client::conn::http1` connections (rather than a pooled client) keep the client's own
//! overhead small and the concurrency exact: with `c` connections there are exactly `c` requests in
//! flight, and connection set-up happens before the clock starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where one target's requests go and whose token they carry.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The full `Authorization` header value (`Bearer sk-mock` direct, `Bearer rg_agt_…` via the gateway).
    pub authorization: Arc<str>,
}

/// One request shape of a scenario.
#[derive(Clone)]
pub struct Shape {
    pub body: Bytes,
    /// Streaming replies must end with `data: [DONE]` (the gateway appends its own trailer after it).
    pub stream: bool,
}

/// One client connection, ready for the next request.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // A connection closing mid-run surfaces as an error on the next request; nothing to add here.
            let _closed = connection.await;
        });
        Ok(Conn { sender })
    }
}

/// What one phase (one target, one concurrency, one slice of requests) observed.
#[derive(Debug, Default)]
pub struct PhaseResult {
    /// Latency of every successful request.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    /// The first error seen, to show the reader what went wrong.
    pub first_error: Option<String>,
    /// Wall time from the first request sent to the last response read.
    pub elapsed: Duration,
}

impl PhaseResult {
    pub fn absorb(&mut self, other: PhaseResult) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
    }
}

/// Sends `requests` requests over `conns` (one worker per connection) and returns the connections for
/// the next phase. A connection that fails is replaced, so one error does not end a worker.
pub async fn run_phase(
    endpoint: &Endpoint,
    shape: &Shape,
    conns: Vec<Conn>,
    requests: usize,
) -> Result<(PhaseResult, Vec<Conn>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (endpoint, shape, next) = (endpoint.clone(), shape.clone(), Arc::clone(&next));
            tokio::spawn(async move { worker(endpoint, shape, conn, next, requests).await })
        })
        .collect();
    let mut result = PhaseResult {
        latencies: Vec::with_capacity(requests),
        ..PhaseResult::default()
    };
    let mut conns = Vec::with_capacity(workers.len());
    for worker in workers {
        let (part, conn) = worker.await.context("load worker died")??;
        result.absorb(part);
        conns.push(conn);
    }
    result.elapsed = started.elapsed();
    Ok((result, conns))
}

async fn worker(
    endpoint: Endpoint,
    shape: Shape,
    mut conn: Conn,
    next: Arc<AtomicUsize>,
    requests: usize,
) -> Result<(PhaseResult, Conn)> {
    let mut result = PhaseResult::default();
    while next.fetch_add(1, Ordering::Relaxed) < requests {
        match send_one(&endpoint, &shape, &mut conn).await {
            Ok(latency) => result.latencies.push(latency),
            Err(error) => {
                result.errors += 1;
                if result.first_error.is_none() {
                    result.first_error = Some(format!("{error:#}"));
                }
                if conn.sender.is_closed() {
                    conn = Conn::open(endpoint.addr).await?;
                }
            }
        }
    }
    Ok((result, conn))
}

/// One request, timed from handing it to hyper until the last body byte is in.
async fn send_one(endpoint: &Endpoint, shape: &Shape, conn: &mut Conn) -> Result<Duration> {
    let request = request(endpoint, shape.body.clone())?;
    conn.sender.ready().await?;
    let started = Instant::now();
    let response = conn.sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let latency = started.elapsed();
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        anyhow::bail!("status {status}: {text}");
    }
    let complete = if shape.stream {
        memmem(&body, b"data: [DONE]")
    } else {
        body.first() == Some(&b'{')
    };
    anyhow::ensure!(complete, "incomplete body ({} bytes)", body.len());
    Ok(latency)
}

/// One untimed request on a connection of its own, for checking what a target answers; fails
/// unless the status is 200.
pub async fn fetch(endpoint: &Endpoint, body: Bytes) -> Result<(HeaderMap, Bytes)> {
    let mut conn = Conn::open(endpoint.addr).await?;
    conn.sender.ready().await?;
    let response = conn.sender.send_request(request(endpoint, body)?).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    if parts.status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        anyhow::bail!("status {}: {text}", parts.status);
    }
    Ok((parts.headers, body))
}

fn request(endpoint: &Endpoint, body: Bytes) -> Result<Request<Full<Bytes>>> {
    Ok(Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header(header::HOST, endpoint.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, &*endpoint.authorization)
        .body(Full::new(body))?)
}

fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
