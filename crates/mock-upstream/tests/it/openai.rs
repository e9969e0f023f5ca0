//! `/v1/chat/completions` and `/v1/models` in OpenAI's shapes.

use serde_json::{Value, json};

use crate::support::{header, post, post_json, post_stream, start};

const PATH: &str = "/v1/chat/completions";

fn chat(extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
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

#[tokio::test]
async fn completion_echoes_last_user_message_in_the_full_openai_shape() {
    let mock = start().await;
    let response = post(&mock, PATH, &chat(json!({}))).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-request-id").starts_with("req_mock_"));
    let body: Value = response.json().await.unwrap();

    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["system_fingerprint"].is_string());
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Echo: hello there world");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    // Text: "Be brief." 9 + 14 + 12 + 17 = 52 chars / 4 = 13; the reply has 4 words.
    assert_eq!(body["usage"]["prompt_tokens"], 13);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 17);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

#[tokio::test]
async fn a_conversation_without_user_text_gets_the_default_reply() {
    let mock = start().await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "x"}]});
    let reply = post_json(&mock, PATH, &body, 200).await;
    assert_eq!(reply["choices"][0]["message"]["content"], "Hello from mock");
    assert_eq!(reply["usage"]["prompt_tokens"], 1);
    assert_eq!(reply["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn stream_sends_role_then_one_chunk_per_word_then_stop_then_done() {
    let mock = start().await;
    let events = post_stream(&mock, PATH, &chat(json!({"stream": true}))).await;

    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    // role, 4 words, finish
    assert_eq!(chunks.len(), 6);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert!(chunk.get("usage").is_none(), "usage only when asked for");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let text: String = chunks[1..5]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Echo: hello there world");
    let last = &chunks[5]["choices"][0];
    assert_eq!(last["delta"], json!({}));
    assert_eq!(last["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_a_usage_chunk_and_nulls_before() {
    let mock = start().await;
    let body = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let events = post_stream(&mock, PATH, &body).await;

    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let (usage_chunk, earlier) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 13);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 4);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 17);
    for chunk in earlier {
        assert_eq!(chunk["usage"], Value::Null);
        assert!(chunk.get("usage").is_some());
    }
    assert_eq!(
        earlier.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    let without = chat(json!({"stream": true, "stream_options": {"include_usage": false}}));
    let events = post_stream(&mock, PATH, &without).await;
    assert!(events.iter().all(|e| !e.data.contains("\"usage\"")));
}

#[tokio::test]
async fn scripted_tool_call_replaces_the_text_answer() {
    let mock = start().await;
    let reply = post_json(&mock, PATH, &chat(weather_tool()), 200).await;
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_mock_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"city": "Paris"})
    );
    // {"city":"Paris"} is 16 characters: 16 / 4 + 5
    assert_eq!(reply["usage"]["completion_tokens"], 9);
}

#[tokio::test]
async fn streamed_tool_call_sends_id_and_name_then_arguments_in_pieces() {
    let mock = start().await;
    let mut body = chat(weather_tool());
    body["stream"] = json!(true);
    let events = post_stream(&mock, PATH, &body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let deltas: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json()["choices"][0].clone())
        .collect();

    let opening = &deltas[0]["delta"]["tool_calls"][0];
    assert!(opening["id"].as_str().unwrap().starts_with("call_mock_"));
    assert_eq!(opening["function"]["name"], "get_weather");
    assert_eq!(opening["function"]["arguments"], "");
    let (finish, pieces) = deltas[1..].split_last().unwrap();
    assert!(pieces.len() >= 2, "arguments arrive in several pieces");
    let arguments: String = pieces
        .iter()
        .map(|d| {
            d["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(finish["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn use_tool_in_the_last_user_message_calls_the_first_declared_tool() {
    let mock = start().await;
    let tools = json!([
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "other"}}
    ]);
    let body = json!({"model": "gpt-4o", "tools": tools,
        "messages": [{"role": "user", "content": "please use tool now"}]});
    let reply = post_json(&mock, PATH, &body, 200).await;
    let call = &reply["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "lookup");
    assert_eq!(call["arguments"], "{}");

    let without_tools = json!({"model": "gpt-4o",
        "messages": [{"role": "user", "content": "please use tool now"}]});
    let reply = post_json(&mock, PATH, &without_tools, 200).await;
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Echo: please use tool now"
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_in_openai_error_shape() {
    let mock = start().await;
    let response = reqwest::Client::new()
        .post(format!("{}{PATH}", mock.base_url()))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["param"], Value::Null);
    assert_eq!(body["error"]["code"], Value::Null);
}

#[tokio::test]
async fn models_lists_gpt_4o_in_openai_list_shape() {
    let mock = start().await;
    let response = reqwest::get(format!("{}/v1/models", mock.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let first = &body["data"][0];
    assert_eq!(first["id"], "gpt-4o");
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "mock");
    assert!(first["created"].is_u64());
}
