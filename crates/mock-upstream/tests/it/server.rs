//! The server as a whole: key checks, the request log, shutdown, and the binary's startup contract.

use std::process::Stdio;
use std::time::Duration;

use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{post_json, start};

fn chat() -> Value {
    json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
}

async fn keyed() -> MockUpstream {
    let config = MockConfig {
        require_key: Some("sk-right".to_owned()),
        ..MockConfig::default()
    };
    MockUpstream::start(config).await.unwrap()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn openai_routes_refuse_a_wrong_or_missing_bearer_key_with_openai_401() {
    let mock = keyed().await;
    let client = reqwest::Client::new();
    let chat_url = format!("{}/v1/chat/completions", mock.base_url());
    let models_url = format!("{}/v1/models", mock.base_url());
    let expected = json!({"error": {"message": "Incorrect API key provided",
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});

    let wrong = client.post(&chat_url).bearer_auth("sk-wrong").json(&chat());
    assert_eq!(send(wrong).await, (401, expected.clone()));
    assert_eq!(
        send(client.post(&chat_url).json(&chat())).await,
        (401, expected.clone())
    );
    assert_eq!(send(client.get(&models_url)).await, (401, expected));

    let right = client.post(&chat_url).bearer_auth("sk-right").json(&chat());
    assert_eq!(send(right).await.0, 200);
    assert_eq!(
        send(client.get(&models_url).bearer_auth("sk-right"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn anthropic_routes_take_x_api_key_or_bearer_and_refuse_others_with_anthropic_401() {
    let mock = keyed().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", mock.base_url());
    let count_url = format!("{}/v1/messages/count_tokens", mock.base_url());
    let expected = json!({"type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"}});

    let wrong = client
        .post(&url)
        .header("x-api-key", "sk-wrong")
        .json(&chat());
    assert_eq!(send(wrong).await, (401, expected.clone()));
    assert_eq!(
        send(client.post(&count_url).json(&chat())).await,
        (401, expected)
    );

    let by_header = client
        .post(&url)
        .header("x-api-key", "sk-right")
        .json(&chat());
    assert_eq!(send(by_header).await.0, 200);
    let by_bearer = client.post(&url).bearer_auth("sk-right").json(&chat());
    assert_eq!(send(by_bearer).await.0, 200);
}

#[tokio::test]
async fn every_request_is_recorded_in_order_with_exact_body_and_lowercase_headers() {
    let mock = start().await;
    let raw = r#"{"model":"m",  "messages":[{"role":"user","content":"hi"}],"extra_field":{"kept":true}}"#;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/chat/completions?trace=1", mock.base_url()))
        .header("X-Custom-Header", "Value-1")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let missing = client
        .get(format!("{}/nowhere", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    assert_eq!(mock.request_count(), 2);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions?trace=1");
    assert_eq!(first.body, raw.as_bytes());
    assert!(
        first
            .headers
            .iter()
            .any(|(k, v)| k == "x-custom-header" && v == "Value-1")
    );
    assert_eq!(first.header("X-CUSTOM-HEADER"), Some("Value-1"));
    assert_eq!(first.header("absent"), None);
    assert_eq!(first.json().unwrap()["extra_field"], json!({"kept": true}));
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("GET", "/nowhere")
    );
    assert_eq!(requests[1].json(), None);
}

#[tokio::test]
async fn servers_run_side_by_side_with_separate_logs() {
    let (a, b) = (start().await, start().await);
    assert_ne!(a.addr(), b.addr());
    assert_eq!(
        a.base_url(),
        format!("http://127.0.0.1:{}", a.addr().port())
    );
    post_json(&a, "/v1/chat/completions", &chat(), 200).await;
    assert_eq!((a.request_count(), b.request_count()), (1, 0));
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let mock = start().await;
    let url = format!("{}/v1/models", mock.base_url());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    mock.shutdown().await;
    assert!(reqwest::get(&url).await.is_err());
}

#[tokio::test]
async fn binary_prints_its_address_then_serves_until_killed() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args([
            "--port",
            "0",
            "--require-key",
            "sk-bin",
            "--latency-ms",
            "1",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap()
        .unwrap();
    let base_url = line
        .trim_end()
        .strip_prefix("mock-upstream listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(base_url.starts_with("http://127.0.0.1:"));

    let client = reqwest::Client::new();
    let models = format!("{base_url}/v1/models");
    assert_eq!(client.get(&models).send().await.unwrap().status(), 401);
    let ok = client
        .get(&models)
        .bearer_auth("sk-bin")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn binary_script_flag_sets_the_default_script() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--port", "0", "--script", r#"{"status":429}"#])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let base_url = line
        .trim_end()
        .trim_start_matches("mock-upstream listening on ");
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/responses"))
        .json(&json!({"model": "m", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    child.kill().await.unwrap();

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--port", "0", "--script", r#"{"stauts":429}"#])
        .output()
        .await
        .unwrap();
    assert!(
        !refused.status.success(),
        "an invalid script is refused at startup"
    );
}
