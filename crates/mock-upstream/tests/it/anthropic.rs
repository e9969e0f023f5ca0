//! `/v1/messages` and `/v1/messages/count_tokens` in Anthropic's shapes.

use serde_json::{Value, json};

use crate::support::{Event, header, post, post_json, post_stream, start};

const PATH: &str = "/v1/messages";

fn messages(extra: Value) -> Value {
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]}
        ]
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

fn weather_tool() -> Value {
    json!({"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}})
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_deref().unwrap()).collect()
}

/// Every event's `type` matches its SSE `event:` name.
fn assert_types_match_names(events: &[Event]) {
    for event in events {
        assert_eq!(event.json()["type"], event.name.as_deref().unwrap());
    }
}

#[tokio::test]
async fn message_echoes_last_user_message_in_the_anthropic_shape() {
    let mock = start().await;
    let response = post(&mock, PATH, &messages(json!({}))).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "request-id").starts_with("req_mock_"));
    let body: Value = response.json().await.unwrap();

    assert!(body["id"].as_str().unwrap().starts_with("msg_mock_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Echo: hello there world"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    // System 9 + 14 + 12 + 17 = 52 chars / 4 = 13; the reply has 4 words.
    assert_eq!(body["usage"]["input_tokens"], 13);
    assert_eq!(body["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn stream_follows_the_anthropic_event_grammar() {
    let mock = start().await;
    let events = post_stream(&mock, PATH, &messages(json!({"stream": true}))).await;

    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_types_match_names(&events);
    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["usage"]["input_tokens"], 13);
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events[3..7]
        .iter()
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "text_delta");
            delta["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Echo: hello there world");
    let delta = events[8].json();
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn scripted_tool_call_is_a_tool_use_block() {
    let mock = start().await;
    let reply = post_json(&mock, PATH, &messages(weather_tool()), 200).await;
    assert_eq!(reply["stop_reason"], "tool_use");
    let block = &reply["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_mock_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "Paris"}));
    assert_eq!(reply["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn streamed_tool_use_sends_input_json_in_pieces() {
    let mock = start().await;
    let mut body = messages(weather_tool());
    body["stream"] = json!(true);
    let events = post_stream(&mock, PATH, &body).await;
    assert_types_match_names(&events);

    let start = events[1].json();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let pieces: Vec<Value> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| e.json()["delta"].clone())
        .collect();
    assert!(pieces.len() >= 2, "input arrives in several pieces");
    let partial: String = pieces
        .iter()
        .map(|d| {
            assert_eq!(d["type"], "input_json_delta");
            d["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"city": "Paris"})
    );
    let delta = events
        .iter()
        .find(|e| e.name.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn use_tool_calls_the_first_declared_tool_with_empty_input() {
    let mock = start().await;
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 64,
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Use tool please"}]});
    let reply = post_json(&mock, PATH, &body, 200).await;
    assert_eq!(reply["content"][0]["name"], "lookup");
    assert_eq!(reply["content"][0]["input"], json!({}));
}

#[tokio::test]
async fn count_tokens_reports_the_same_input_count_as_a_reply() {
    let mock = start().await;
    let count = post_json(
        &mock,
        "/v1/messages/count_tokens",
        &messages(json!({})),
        200,
    )
    .await;
    assert_eq!(count, json!({"input_tokens": 13}));
}

#[tokio::test]
async fn malformed_json_is_a_400_in_anthropic_error_shape() {
    let mock = start().await;
    let response = reqwest::Client::new()
        .post(format!("{}{PATH}", mock.base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].is_string());
}
