//! `/v1beta/models/{model}:{method}` in Gemini's shapes: whole replies, both stream forms, function
//! calls, Google's error shape and both ways of passing the key.

use futures::StreamExt;
use mock_upstream::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::support::{header, parse_sse_crlf, post, post_json};

const MODEL: &str = "gemini-2.0-flash";

fn generate() -> String {
    format!("/v1beta/models/{MODEL}:generateContent")
}

fn stream_sse() -> String {
    format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
}

fn stream_array() -> String {
    format!("/v1beta/models/{MODEL}:streamGenerateContent")
}

fn request(extra: Value) -> Value {
    let mut body = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first question"}]},
            {"role": "model", "parts": [{"text": "first answer"}]},
            {"role": "user", "parts": [{"text": "hello there world"}]}
        ],
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 100}
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

async fn start() -> MockUpstream {
    crate::support::start().await
}

#[tokio::test]
async fn generate_content_echoes_the_last_user_text_in_gemini_shape() {
    let mock = start().await;
    let response = post(&mock, &generate(), &request(json!({}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    let body: Value = response.json().await.unwrap();
    let candidate = &body["candidates"][0];
    assert_eq!(
        candidate["content"],
        json!({"parts": [{"text": "Echo: hello there world"}], "role": "model"})
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    // "Be brief." 9 + 14 + 12 + 17 = 52 chars / 4 = 13; the reply has 4 words.
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 13);
    assert_eq!(usage["candidatesTokenCount"], 4);
    assert_eq!(usage["totalTokenCount"], 17);
    assert_eq!(body["modelVersion"], MODEL);
    assert!(body["responseId"].is_string());
}

#[tokio::test]
async fn sse_stream_sends_text_chunks_with_cumulative_usage_and_stop_last() {
    let mock = start().await;
    let response = post(&mock, &stream_sse(), &request(json!({}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let events = parse_sse_crlf(&response.text().await.unwrap());
    assert_eq!(events.len(), 4, "one chunk per word");
    let chunks: Vec<Value> = events.iter().map(|e| e.json()).collect();
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Echo: hello there world");
    let mut previous = 0;
    for (at, chunk) in chunks.iter().enumerate() {
        assert!(events[at].name.is_none());
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
        assert_eq!(chunk["modelVersion"], MODEL);
        assert_eq!(chunk["responseId"], chunks[0]["responseId"]);
        let usage = &chunk["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], 13, "on every chunk");
        let output = usage["candidatesTokenCount"].as_u64().unwrap();
        assert!(output >= previous, "usage is cumulative");
        previous = output;
        let last = at == chunks.len() - 1;
        assert_eq!(chunk["candidates"][0].get("finishReason").is_some(), last);
    }
    let last = &chunks[3];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 17);
}

#[tokio::test]
async fn stream_without_alt_sse_is_one_json_array_of_the_same_chunks() {
    let mock = start().await;
    let usage = json!({"mock": {"usage": {"input_tokens": 100, "output_tokens": 40}}});
    let response = post(&mock, &stream_array(), &request(usage)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    let chunks: Vec<Value> = response.json().await.unwrap();
    assert_eq!(chunks.len(), 4);
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Echo: hello there world");
    let outputs: Vec<u64> = chunks
        .iter()
        .map(|c| c["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
        .collect();
    assert_eq!(outputs, [10, 20, 30, 40]);
    assert_eq!(chunks[3]["usageMetadata"]["totalTokenCount"], 140);
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn die_after_events_cuts_either_stream_form_after_k_chunks() {
    let mock = start().await;
    let script = request(json!({"mock": {"die_after_events": 2}}));
    for path in [stream_sse(), stream_array()] {
        let response = post(&mock, &path, &script).await;
        let mut received = Vec::new();
        let mut failed = false;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => received.extend_from_slice(&bytes),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "{path}: the body ends in an error");
        let text = String::from_utf8(received).unwrap();
        assert_eq!(text.matches("\"candidates\"").count(), 2, "{path}: {text}");
    }
}

#[tokio::test]
async fn function_calls_are_whole_parts_scripted_or_triggered() {
    let mock = start().await;
    let script =
        json!({"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}});
    let reply = post_json(&mock, &generate(), &request(script.clone()), 200).await;
    assert_eq!(
        reply["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])
    );
    assert_eq!(reply["candidates"][0]["finishReason"], "STOP");
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], 9);

    let response = post(&mock, &stream_sse(), &request(script)).await;
    let events = parse_sse_crlf(&response.text().await.unwrap());
    assert_eq!(events.len(), 1, "Gemini sends a call whole");
    let chunk = events[0].json();
    assert_eq!(
        chunk["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(chunk["candidates"][0]["finishReason"], "STOP");

    let tools =
        json!([{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}]);
    let asked = json!({"tools": tools,
        "contents": [{"role": "user", "parts": [{"text": "please use tool now"}]}]});
    let reply = post_json(&mock, &generate(), &asked, 200).await;
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0],
        json!({"functionCall": {"name": "lookup", "args": {}}})
    );
    let answered = json!({"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "please use tool now"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"ok": true}}}]}
    ]});
    let reply = post_json(&mock, &generate(), &answered, 200).await;
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0]["text"],
        "Echo: please use tool now"
    );
}

#[tokio::test]
async fn the_stable_v1_path_answers_like_v1beta() {
    // google-genai calls /v1/ by default.
    let mock = start().await;
    let path = format!("/v1/models/{MODEL}:generateContent");
    let reply = post_json(&mock, &path, &request(json!({})), 200).await;
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0]["text"],
        "Echo: hello there world"
    );
    let models = reqwest::get(format!("{}/v1/models", mock.base_url()))
        .await
        .unwrap();
    assert_eq!(models.status(), 200, "OpenAI's model list is still served");
}

#[tokio::test]
async fn count_tokens_reports_the_prompt_count() {
    let mock = start().await;
    let path = format!("/v1beta/models/{MODEL}:countTokens");
    let reply = post_json(&mock, &path, &request(json!({})), 200).await;
    assert_eq!(reply, json!({"totalTokens": 13}));
}

#[tokio::test]
async fn errors_are_in_google_shape_with_the_canonical_status() {
    let mock = start().await;
    for (code, status) in [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ] {
        let body = request(json!({"mock": {"status": code}}));
        let reply = post_json(&mock, &generate(), &body, code).await;
        assert_eq!(
            reply,
            json!({"error": {"code": code, "message": format!("mock error {code}"), "status": status}})
        );
    }
    let streamed = post(
        &mock,
        &stream_sse(),
        &request(json!({"mock": {"status": 429}})),
    )
    .await;
    assert_eq!(streamed.status(), 429);

    let unknown = post_json(
        &mock,
        &format!("/v1beta/models/{MODEL}:embedContent"),
        &request(json!({})),
        404,
    )
    .await;
    assert_eq!(unknown["error"]["status"], "NOT_FOUND");
    let response = reqwest::Client::new()
        .post(format!("{}{}", mock.base_url(), generate()))
        .header("content-type", "application/json")
        .body("{\"contents\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(reply["error"]["code"], 400);
}

#[tokio::test]
async fn key_goes_in_x_goog_api_key_or_the_key_parameter() {
    let mock = MockUpstream::start(MockConfig {
        require_key: Some("g-right".to_owned()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}{}", mock.base_url(), generate());
    let body = request(json!({}));
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };

    let (status, wrong) = send(
        client
            .post(&url)
            .header("x-goog-api-key", "g-wrong")
            .json(&body),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(wrong["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(wrong["error"]["code"], 401);
    assert_eq!(
        send(client.post(&url).bearer_auth("g-right").json(&body))
            .await
            .0,
        401
    );
    assert_eq!(
        send(
            client
                .post(&url)
                .header("x-goog-api-key", "g-right")
                .json(&body)
        )
        .await
        .0,
        200
    );
    let sse_url = format!("{}{}&key=g-right", mock.base_url(), stream_sse());
    let by_query = client.post(&sse_url).json(&body).send().await.unwrap();
    assert_eq!(by_query.status(), 200);

    let recorded = mock.requests();
    let last = recorded.last().unwrap();
    assert_eq!(
        last.path_without_query(),
        format!("/v1beta/models/{MODEL}:streamGenerateContent")
    );
    assert_eq!(last.query_param("alt").as_deref(), Some("sse"));
    assert_eq!(last.query_param("key").as_deref(), Some("g-right"));
    assert_eq!(recorded[2].header("x-goog-api-key"), Some("g-right"));
}
