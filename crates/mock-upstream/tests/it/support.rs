//! Starting a mock, sending it requests, and reading SSE the way a client would.

use std::time::Duration;

use mock_upstream::{MockConfig, MockUpstream};
use serde_json::Value;

pub async fn start() -> MockUpstream {
    MockUpstream::start(MockConfig::default()).await.unwrap()
}

pub async fn post(mock: &MockUpstream, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", mock.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// POST and parse a JSON answer, checking the status.
pub async fn post_json(mock: &MockUpstream, path: &str, body: &Value, status: u16) -> Value {
    let response = post(mock, path, body).await;
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(header(&response, "content-type"), "application/json");
    response.json().await.unwrap()
}

pub fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[derive(Debug)]
pub struct Event {
    /// The `event:` line, if any (Anthropic names its events, OpenAI does not).
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Split an SSE body into events, checking that it is well framed.
pub fn parse_sse(text: &str) -> Vec<Event> {
    parse_sse_with(text, "\n\n")
}

/// Split an SSE body whose events end in `\r\n\r\n` (Gemini's framing), checking no bare `\n\n`.
pub fn parse_sse_crlf(text: &str) -> Vec<Event> {
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "a bare LF in {text:?}"
    );
    parse_sse_with(text, "\r\n\r\n")
}

fn parse_sse_with(text: &str, separator: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(separator) {
        let block = &rest[..end];
        rest = &rest[end + separator.len()..];
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(value.to_owned());
            } else {
                panic!("unexpected SSE line {line:?}");
            }
        }
        events.push(Event {
            name,
            data: data.expect("an SSE event without data"),
        });
    }
    assert_eq!(rest, "", "SSE body ends mid-event");
    events
}

/// POST a streaming request and parse the whole SSE body.
pub async fn post_stream(mock: &MockUpstream, path: &str, body: &Value) -> Vec<Event> {
    let response = post(mock, path, body).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    parse_sse(&response.text().await.unwrap())
}

/// Wait until `condition` holds, failing after five seconds.
pub async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
