//! The request body's `"mock"` object: usage, status, latency, pacing, dying streams, hanging requests.

use std::time::{Duration, Instant};

use futures::StreamExt;
use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::support::{header, parse_sse, post, post_json, post_stream, start, wait_until};

const OPENAI: &str = "/v1/chat/completions";
const ANTHROPIC: &str = "/v1/messages";

fn body(mock: Value) -> Value {
    json!({
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "one two three"}],
        "mock": mock
    })
}

fn streaming(mock: Value) -> Value {
    let mut body = body(mock);
    body["stream"] = json!(true);
    body
}

#[tokio::test]
async fn usage_override_is_reported_by_both_dialects_streaming_or_not() {
    let mock = start().await;
    let usage = json!({"usage": {"input_tokens": 1234, "output_tokens": 567}});

    let openai = post_json(&mock, OPENAI, &body(usage.clone()), 200).await;
    assert_eq!(openai["usage"]["prompt_tokens"], 1234);
    assert_eq!(openai["usage"]["completion_tokens"], 567);
    assert_eq!(openai["usage"]["total_tokens"], 1801);

    let mut openai_stream = streaming(usage.clone());
    openai_stream["stream_options"] = json!({"include_usage": true});
    let events = post_stream(&mock, OPENAI, &openai_stream).await;
    let usage_chunk = events[events.len() - 2].json();
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 1234);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 567);

    let anthropic = post_json(&mock, ANTHROPIC, &body(usage.clone()), 200).await;
    assert_eq!(anthropic["usage"]["input_tokens"], 1234);
    assert_eq!(anthropic["usage"]["output_tokens"], 567);

    let events = post_stream(&mock, ANTHROPIC, &streaming(usage)).await;
    assert_eq!(events[0].json()["message"]["usage"]["input_tokens"], 1234);
    let delta = events
        .iter()
        .find(|e| e.name.as_deref() == Some("message_delta"));
    assert_eq!(delta.unwrap().json()["usage"]["output_tokens"], 567);
}

#[tokio::test]
async fn partial_usage_override_keeps_the_computed_other_half() {
    let mock = start().await;
    let reply = post_json(
        &mock,
        OPENAI,
        &body(json!({"usage": {"output_tokens": 50}})),
        200,
    )
    .await;
    // "one two three" is 13 chars / 4 = 3; the override only touches output.
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    assert_eq!(reply["usage"]["completion_tokens"], 50);
}

#[tokio::test]
async fn status_override_answers_with_a_provider_format_error() {
    let mock = start().await;
    let openai = post_json(&mock, OPENAI, &body(json!({"status": 500})), 500).await;
    assert_eq!(
        openai,
        json!({"error": {"message": "mock error 500", "type": "server_error", "param": null, "code": null}})
    );
    let anthropic = post_json(&mock, ANTHROPIC, &body(json!({"status": 503})), 503).await;
    assert_eq!(
        anthropic,
        json!({"type": "error", "error": {"type": "api_error", "message": "mock error 503"}})
    );
    // A scripted error wins over streaming: no event stream is started.
    let streamed = post(&mock, OPENAI, &streaming(json!({"status": 502}))).await;
    assert_eq!(streamed.status(), 502);
}

#[tokio::test]
async fn status_429_is_a_rate_limit_error_with_retry_after() {
    let mock = start().await;
    for path in [OPENAI, ANTHROPIC] {
        let response = post(&mock, path, &body(json!({"status": 429}))).await;
        assert_eq!(response.status(), 429);
        assert_eq!(header(&response, "retry-after"), "1");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error.pointer("/error/type").unwrap(), "rate_limit_error");
    }
}

/// Read a streamed body to its end; return what arrived and whether it ended in an error.
async fn read_until_end(response: reqwest::Response) -> (String, bool) {
    let mut received = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(received).unwrap(), true),
        }
    }
    (String::from_utf8(received).unwrap(), false)
}

#[tokio::test]
async fn die_after_events_delivers_k_events_then_breaks_the_body() {
    let mock = start().await;
    for (path, k) in [(OPENAI, 2), (ANTHROPIC, 1), (ANTHROPIC, 4), (OPENAI, 0)] {
        let response = post(&mock, path, &streaming(json!({"die_after_events": k}))).await;
        assert_eq!(response.status(), 200);
        let (received, failed) = read_until_end(response).await;
        assert!(
            failed,
            "{path} die_after_events {k}: the body must end in an error, not EOF"
        );
        let events = parse_sse(&received);
        assert_eq!(
            events.len(),
            k,
            "{path}: exactly the first {k} events arrive"
        );
    }
    // For Anthropic the first event is message_start: the input usage is known before the break.
    let response = post(&mock, ANTHROPIC, &streaming(json!({"die_after_events": 1}))).await;
    let (received, _) = read_until_end(response).await;
    assert_eq!(
        parse_sse(&received)[0].json()["message"]["usage"]["input_tokens"],
        3
    );
}

#[tokio::test]
async fn a_complete_stream_ends_cleanly() {
    let mock = start().await;
    let response = post(&mock, OPENAI, &streaming(json!({}))).await;
    let (received, failed) = read_until_end(response).await;
    assert!(!failed);
    assert!(received.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn hanging_request_does_not_block_others_and_ends_with_the_server() {
    let mock = start().await;
    let hung = tokio::spawn(post_hanging(mock.base_url()));
    wait_until(|| mock.request_count() == 1).await;

    let second = tokio::time::timeout(
        Duration::from_secs(5),
        post(&mock, OPENAI, &body(json!({}))),
    )
    .await
    .expect("a second request is answered while the first hangs");
    assert_eq!(second.status(), 200);
    assert!(!hung.is_finished());

    drop(mock);
    let outcome = tokio::time::timeout(Duration::from_secs(5), hung).await;
    assert!(
        outcome.unwrap().unwrap().is_err(),
        "dropping the server ends the hung request"
    );
}

async fn post_hanging(base_url: String) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{base_url}{OPENAI}"))
        .json(&body(json!({"hang": true})))
        .send()
        .await
}

#[tokio::test]
async fn latency_delays_the_answer_and_a_request_can_override_it() {
    let slow = MockUpstream::start(MockConfig {
        latency: Duration::from_millis(150),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    post_json(&slow, OPENAI, &body(json!({})), 200).await;
    assert!(started.elapsed() >= Duration::from_millis(150));

    let started = Instant::now();
    post_json(&slow, ANTHROPIC, &body(json!({"latency_ms": 0})), 200).await;
    assert!(started.elapsed() < Duration::from_millis(150));

    let fast = start().await;
    let started = Instant::now();
    post_json(&fast, ANTHROPIC, &body(json!({"latency_ms": 120})), 200).await;
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn chunk_delay_spaces_events_and_each_is_sent_as_produced() {
    let mock = start().await;
    // role, 4 words ("Echo: one two three"), finish, [DONE]: 7 events, 6 gaps of 60 ms.
    let response = post(&mock, OPENAI, &streaming(json!({"chunk_delay_ms": 60}))).await;
    let started = Instant::now();
    let mut stream = response.bytes_stream();
    let mut first_at = None;
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        first_at.get_or_insert_with(|| started.elapsed());
        received.extend_from_slice(&chunk.unwrap());
    }
    let total = started.elapsed();
    assert_eq!(parse_sse(&String::from_utf8(received).unwrap()).len(), 7);
    assert!(
        total >= Duration::from_millis(300),
        "events are spaced: {total:?}"
    );
    let first_at = first_at.unwrap();
    assert!(
        total - first_at >= Duration::from_millis(300),
        "the first event arrives long before the last ({first_at:?} of {total:?})"
    );
}

#[tokio::test]
async fn unknown_mock_fields_are_rejected_so_typos_fail_loudly() {
    let mock = start().await;
    let reply = post_json(&mock, OPENAI, &body(json!({"latency": 5})), 400).await;
    assert_eq!(reply["error"]["type"], "invalid_request_error");
}

async fn scripted_server(script: Value) -> MockUpstream {
    MockUpstream::start(MockConfig {
        default_script: Some(script),
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// A body each dialect accepts, with no `"mock"` member: what a gateway's translation leaves.
fn plain_bodies() -> [(&'static str, Value); 4] {
    let chat =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    [
        (OPENAI, chat.clone()),
        (ANTHROPIC, chat),
        ("/v1/responses", json!({"model": "m", "input": "hi"})),
        (
            "/v1beta/models/gemini-2.0-flash:generateContent",
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
        ),
    ]
}

#[tokio::test]
async fn default_script_fails_every_dialect_in_its_own_error_shape() {
    let mock = scripted_server(json!({"status": 503})).await;
    for (path, body) in plain_bodies() {
        let error = post_json(&mock, path, &body, 503).await;
        let message = error
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert_eq!(message, "mock error 503", "{path}: {error}");
    }
    let gemini = &plain_bodies()[3];
    let error = post_json(&mock, gemini.0, &gemini.1, 503).await;
    assert_eq!(error["error"]["status"], "UNAVAILABLE");

    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths[..4], plain_bodies().map(|(path, _)| path.to_owned()));
}

#[tokio::test]
async fn request_mock_members_win_over_the_default_one_by_one() {
    let mock = scripted_server(json!({"status": 429, "usage": {"output_tokens": 77}})).await;
    let limited = post(&mock, OPENAI, &body(json!({}))).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "retry-after"), "1");

    // Clearing the status keeps the default usage.
    let cleared = post_json(&mock, OPENAI, &body(json!({"status": null})), 200).await;
    assert_eq!(cleared["usage"]["completion_tokens"], 77);
    // Naming a member replaces it whole: no deep merge into the default usage.
    let replaced = body(json!({"status": null, "usage": {"input_tokens": 5}}));
    let replaced = post_json(&mock, OPENAI, &replaced, 200).await;
    assert_eq!(replaced["usage"]["prompt_tokens"], 5);
    assert_eq!(replaced["usage"]["completion_tokens"], 4, "computed again");
    let other = post_json(&mock, ANTHROPIC, &body(json!({"status": 500})), 500).await;
    assert_eq!(other["error"]["type"], "api_error");
}

#[tokio::test]
async fn default_hang_holds_every_request_until_the_server_stops() {
    let mock = scripted_server(json!({"hang": true})).await;
    let hung = tokio::spawn(post_hanging(mock.base_url()));
    wait_until(|| mock.request_count() == 1).await;
    let released = post_json(&mock, OPENAI, &body(json!({"hang": false})), 200).await;
    assert_eq!(released["object"], "chat.completion");
    assert!(!hung.is_finished());
    drop(mock);
    let outcome = tokio::time::timeout(Duration::from_secs(5), hung).await;
    assert!(outcome.unwrap().unwrap().is_err());
}

#[tokio::test]
async fn an_invalid_default_script_refuses_to_start() {
    for script in [json!({"stauts": 500}), json!({"status": 42}), json!("503")] {
        let started = MockUpstream::start(MockConfig {
            default_script: Some(script.clone()),
            ..MockConfig::default()
        })
        .await;
        let error = started.expect_err("an invalid default script");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{script}");
    }
}
