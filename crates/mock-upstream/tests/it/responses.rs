//! `/v1/responses` in OpenAI's Responses shapes: the response object, the typed event stream,
//! function calls, errors and keys.

use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::support::{Event, header, post, post_json, post_stream, start};

const PATH: &str = "/v1/responses";

fn request(extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-4.1-mini",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": "first question"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "first answer", "annotations": []}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "hello there world"}]}
        ]
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false})
}

#[tokio::test]
async fn response_echoes_the_last_user_input_in_the_full_responses_shape() {
    let mock = start().await;
    let response = post(&mock, PATH, &request(json!({}))).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-request-id").starts_with("req_mock_"));
    let body: Value = response.json().await.unwrap();

    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert!(body["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4.1-mini");
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["incomplete_details"], Value::Null);
    assert_eq!(body["instructions"], "Be brief.", "echoed from the request");
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"], json!([]));
    assert_eq!(body["text"]["format"], json!({"type": "text"}));
    assert_eq!(body["truncation"], "disabled");
    assert_eq!(body["metadata"], json!({}));
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let message = &output[0];
    assert_eq!(message["type"], "message");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["status"], "completed");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["content"],
        json!([{"type": "output_text", "annotations": [], "logprobs": [],
            "text": "Echo: hello there world"}])
    );
    // "Be brief." 9 + 14 + 12 + 17 = 52 chars / 4 = 13; the reply has 4 words.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 13, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17})
    );
}

#[tokio::test]
async fn a_string_input_is_one_user_message_and_settings_are_echoed() {
    let mock = start().await;
    let body = json!({"model": "gpt-4o", "input": "ping pong", "temperature": 0.2,
        "tool_choice": "none", "tools": [weather_tool()], "metadata": {"run": "r1"},
        "text": {"format": {"type": "json_object"}}, "store": false});
    let reply = post_json(&mock, PATH, &body, 200).await;
    assert_eq!(reply["output"][0]["content"][0]["text"], "Echo: ping pong");
    assert_eq!(reply["temperature"], 0.2);
    assert_eq!(reply["tool_choice"], "none");
    assert_eq!(reply["tools"], json!([weather_tool()]));
    assert_eq!(reply["metadata"], json!({"run": "r1"}));
    assert_eq!(reply["text"], json!({"format": {"type": "json_object"}}));
    assert_eq!(reply["store"], false);
    assert_eq!(reply["instructions"], Value::Null);
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_deref().unwrap()).collect()
}

/// Every event is named by its `type` and numbered 0, 1, 2, ... in order.
fn check_envelopes(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .enumerate()
        .map(|(n, event)| {
            let json = event.json();
            assert_eq!(json["type"], event.name.as_deref().unwrap());
            assert_eq!(json["sequence_number"], n, "{json}");
            json
        })
        .collect()
}

#[tokio::test]
async fn stream_follows_the_responses_event_grammar_and_completes_with_usage() {
    let mock = start().await;
    let events = post_stream(&mock, PATH, &request(json!({"stream": true}))).await;
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let json = check_envelopes(&events);
    let created = &json[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);
    let item_id = json[2]["item"]["id"].as_str().unwrap();
    assert_eq!(json[2]["item"]["status"], "in_progress");
    assert_eq!(json[2]["item"]["content"], json!([]));
    assert_eq!(json[3]["part"]["text"], "");
    let text: String = json[4..8]
        .iter()
        .map(|delta| {
            assert_eq!(delta["item_id"], item_id);
            assert_eq!(
                (
                    delta["output_index"].as_u64(),
                    delta["content_index"].as_u64()
                ),
                (Some(0), Some(0))
            );
            delta["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Echo: hello there world");
    assert_eq!(json[8]["text"], text);
    assert_eq!(json[9]["part"]["text"], text);
    assert_eq!(json[10]["item"]["status"], "completed");
    assert_eq!(json[10]["item"]["content"][0]["text"], text);

    let completed = &json[11]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["id"], created["id"]);
    assert_eq!(completed["output"][0], json[10]["item"]);
    assert_eq!(completed["usage"]["input_tokens"], 13);
    assert_eq!(completed["usage"]["output_tokens"], 4);
    assert_eq!(completed["usage"]["total_tokens"], 17);
    assert!(
        events.iter().all(|e| e.data != "[DONE]"),
        "no [DONE] in Responses streams"
    );
}

#[tokio::test]
async fn scripted_tool_call_is_a_function_call_item() {
    let mock = start().await;
    let script =
        json!({"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}});
    let reply = post_json(&mock, PATH, &request(script), 200).await;
    let output = reply["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let call = &output[0];
    assert_eq!(call["type"], "function_call");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    let arguments = call["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"city": "Paris"})
    );
    // {"city":"Paris"} is 16 characters: 16 / 4 + 5
    assert_eq!(reply["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn streamed_function_call_sends_the_item_then_arguments_in_pieces() {
    let mock = start().await;
    let script = json!({"stream": true,
        "mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}});
    let events = post_stream(&mock, PATH, &request(script)).await;
    let json = check_envelopes(&events);
    let names = names(&events);
    let deltas = names
        .iter()
        .filter(|n| **n == "response.function_call_arguments.delta")
        .count();
    assert!(deltas >= 2, "arguments arrive in several pieces: {names:?}");
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ];
    expected.extend(std::iter::repeat_n(
        "response.function_call_arguments.delta",
        deltas,
    ));
    expected.extend([
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, expected);

    let added = &json[2]["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["name"], "get_weather");
    assert_eq!(added["arguments"], "");
    assert_eq!(added["status"], "in_progress");
    let pieces: String = json[3..3 + deltas]
        .iter()
        .map(|d| {
            assert_eq!(d["item_id"], added["id"]);
            d["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    let done = &json[3 + deltas];
    assert_eq!(done["arguments"], pieces);
    assert_eq!(
        serde_json::from_str::<Value>(&pieces).unwrap(),
        json!({"city": "Paris"})
    );
    let item = &json[4 + deltas]["item"];
    assert_eq!(
        (item["status"].as_str(), item["arguments"].as_str()),
        (Some("completed"), Some(pieces.as_str()))
    );
    assert_eq!(item["call_id"], added["call_id"]);
    assert_eq!(json[5 + deltas]["response"]["output"][0], *item);
}

#[tokio::test]
async fn use_tool_calls_the_first_function_tool_until_its_output_is_sent_back() {
    let mock = start().await;
    let tools = json!([{"type": "web_search_preview"}, weather_tool()]);
    let asked = json!({"model": "gpt-4o", "tools": tools, "input": "please use tool now"});
    let reply = post_json(&mock, PATH, &asked, 200).await;
    let call = &reply["output"][0];
    assert_eq!(
        (call["type"].as_str(), call["name"].as_str()),
        (Some("function_call"), Some("get_weather"))
    );
    assert_eq!(call["arguments"], "{}");

    let answered = json!({"model": "gpt-4o", "tools": tools, "input": [
        {"role": "user", "content": "please use tool now"},
        {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    ]});
    let reply = post_json(&mock, PATH, &answered, 200).await;
    assert_eq!(reply["output"][0]["type"], "message");
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        "Echo: please use tool now"
    );

    let without_tools = json!({"model": "gpt-4o", "input": "please use tool now"});
    let reply = post_json(&mock, PATH, &without_tools, 200).await;
    assert_eq!(reply["output"][0]["type"], "message");
}

#[tokio::test]
async fn errors_are_in_openai_shape() {
    let mock = start().await;
    let scripted = post_json(&mock, PATH, &request(json!({"mock": {"status": 429}})), 429).await;
    assert_eq!(
        scripted,
        json!({"error": {"message": "mock error 429", "type": "rate_limit_error", "param": null,
            "code": "rate_limit_exceeded"}})
    );
    let missing_model = post_json(&mock, PATH, &json!({"input": "x"}), 400).await;
    assert_eq!(missing_model["error"]["type"], "invalid_request_error");
    let streamed = post(
        &mock,
        PATH,
        &request(json!({"stream": true, "mock": {"status": 500}})),
    )
    .await;
    assert_eq!(streamed.status(), 500);
}

#[tokio::test]
async fn a_wrong_bearer_key_is_an_openai_401() {
    let mock = MockUpstream::start(MockConfig {
        require_key: Some("sk-right".to_owned()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}{PATH}", mock.base_url());
    let wrong = client
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&request(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let right = client
        .post(&url)
        .bearer_auth("sk-right")
        .json(&request(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
}
