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
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go and what they carry: the same body to the mock directly or through the gateway.
#[derive(Clone)]
pub struct Target {
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
    target: &Target,
    shape: &Shape,
    conns: Vec<Conn>,
    requests: usize,
) -> Result<(PhaseResult, Vec<Conn>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (target, shape, next) = (target.clone(), shape.clone(), Arc::clone(&next));
            tokio::spawn(async move { worker(target, shape, conn, next, requests).await })
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
    target: Target,
    shape: Shape,
    mut conn: Conn,
    next: Arc<AtomicUsize>,
    requests: usize,
) -> Result<(PhaseResult, Conn)> {
    let mut result = PhaseResult::default();
    while next.fetch_add(1, Ordering::Relaxed) < requests {
        match send_one(&target, &shape, &mut conn).await {
            Ok(latency) => result.latencies.push(latency),
            Err(error) => {
                result.errors += 1;
                if result.first_error.is_none() {
                    result.first_error = Some(format!("{error:#}"));
                }
                if conn.sender.is_closed() {
                    conn = Conn::open(target.addr).await?;
                }
            }
        }
    }
    Ok((result, conn))
}

/// One request, timed from handing it to hyper until the last body byte is in.
async fn send_one(target: &Target, shape: &Shape, conn: &mut Conn) -> Result<Duration> {
    conn.sender.ready().await?;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header(header::HOST, target.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, &*target.authorization)
        .body(Full::new(shape.body.clone()))?;
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

fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
