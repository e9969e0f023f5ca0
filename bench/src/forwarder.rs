//! The bare forwarder: the ceiling for any in-series proxy on these cores.
//!
//! It is built from the same server and client stacks as the gateway (axum, and a pooled reqwest
//! client with `TCP_NODELAY`) and does nothing else: each request's body and `Authorization` go to the
//! mock as they came, and the answer comes back, streamed when the mock streams. No run, policy,
//! store or header of Rungate's. Client, forwarder and mock then share the cores the way client,
//! gateway and mock do, so `forwarder req/s ÷ direct req/s` is what putting *any* HTTP hop in series
//! costs on this machine, and `gateway ÷ forwarder` is what Rungate itself costs on top of that hop.

use std::net::SocketAddr;

use anyhow::Result;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    base_url: String,
}

/// Serves the forwarder on `127.0.0.1:0` until the process exits; returns its address.
pub async fn start(mock_base_url: String) -> Result<SocketAddr> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()?;
    let state = Upstream {
        client,
        base_url: mock_base_url,
    };
    let router = axum::Router::new().fallback(forward).with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        // Same socket option as the gateway's listener; a failure only costs latency.
        let _nodelay = tcp.set_nodelay(true);
    });
    // Runs until the process exits, like the gateway in this benchmark.
    let _server = tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return (http::StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let mut call = upstream
        .client
        .post(format!("{}{}", upstream.base_url, parts.uri.path()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION) {
        call = call.header(http::header::AUTHORIZATION, auth.clone());
    }
    let answer = match call.send().await {
        Ok(answer) => answer,
        Err(err) => return (http::StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(content_type) = answer.headers().get(http::header::CONTENT_TYPE) {
        response = response.header(http::header::CONTENT_TYPE, content_type.clone());
    }
    let streamed = answer
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"));
    let body = if streamed {
        Body::from_stream(answer.bytes_stream())
    } else {
        match answer.bytes().await {
            Ok(bytes) => Body::from(bytes),
            Err(err) => return (http::StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
        }
    };
    response.body(body).unwrap_or_else(|err| {
        (http::StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
    })
}
