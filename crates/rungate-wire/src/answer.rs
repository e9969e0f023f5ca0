//! What a non-streaming answer proposes to do: the tools the model calls, by name, and with
//! their arguments where an approval rule needs to read them. The answer's bytes are forwarded
//! untouched.

use serde::Deserialize;

use crate::Dialect;

/// Tool names the model called in a JSON answer, in order (repeats kept); empty when the body
/// is not an answer or calls no tool.
pub fn proposed_tools(dialect: Dialect, body: &[u8]) -> Vec<String> {
    proposed_calls(dialect, body)
        .into_iter()
        .map(|call| call.name)
        .collect()
}

/// One tool call the model proposes.
#[derive(Clone, Debug, PartialEq)]
pub struct ProposedCall {
    pub name: String,
    /// The parsed arguments (OpenAI's `arguments` text, Anthropic's `input`, Gemini's `args`);
    /// arguments that are not JSON are kept as a string.
    pub arguments: serde_json::Value,
}

/// The tool calls in a JSON answer, in order, with their arguments. Responses: the
/// `function_call` (and `custom_tool_call`) output items; the calls of built-in tools
/// (`web_search_call`, ...) already ran at the provider and propose nothing. Gemini: the
/// `functionCall` parts of every candidate.
pub fn proposed_calls(dialect: Dialect, body: &[u8]) -> Vec<ProposedCall> {
    match dialect {
        Dialect::OpenAi => openai_calls(body),
        Dialect::Anthropic => anthropic_calls(body),
        Dialect::Responses => responses_calls(body),
        Dialect::Gemini => serde_json::from_slice::<GeminiAnswer>(body)
            .map(GeminiAnswer::calls)
            .unwrap_or_default(),
    }
}

/// OpenAI `choices` under `message` (an answer) or `delta` (a stream chunk, where a call's name
/// arrives once, in its first delta, and its arguments in fragments).
fn openai_calls(body: &[u8]) -> Vec<ProposedCall> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        message: Option<Message>,
        #[serde(default)]
        delta: Option<Message>,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        tool_calls: Option<Vec<Call>>,
    }
    #[derive(Deserialize)]
    struct Call {
        #[serde(default)]
        function: Option<Function>,
    }
    #[derive(Deserialize)]
    struct Function {
        #[serde(default)]
        name: String,
        #[serde(default)]
        arguments: Option<String>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer
        .choices
        .into_iter()
        .filter_map(|c| c.message.or(c.delta)?.tool_calls)
        .flatten()
        .filter_map(|call| call.function)
        .filter(|f| !f.name.is_empty())
        .map(|f| ProposedCall {
            arguments: parse_arguments(f.arguments.as_deref().unwrap_or("{}")),
            name: f.name,
        })
        .collect()
}

/// Arguments text as JSON, or as the string itself when it does not parse.
pub fn parse_arguments(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

fn anthropic_calls(body: &[u8]) -> Vec<ProposedCall> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        content: Vec<Block>,
    }
    #[derive(Deserialize)]
    struct Block {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: serde_json::Value,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer
        .content
        .into_iter()
        .filter(|block| block.kind == "tool_use" && !block.name.is_empty())
        .map(|block| ProposedCall {
            name: block.name,
            arguments: block.input,
        })
        .collect()
}

/// The Responses API's `output` items that call a client-side tool.
fn responses_calls(body: &[u8]) -> Vec<ProposedCall> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        output: Vec<serde_json::Value>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer.output.iter().filter_map(responses_call).collect()
}

/// A Responses `function_call` item (`arguments` text) or `custom_tool_call` item (free-form
/// `input` text) as a call; `None` for any other item.
fn responses_call(item: &serde_json::Value) -> Option<ProposedCall> {
    let text = match item["type"].as_str()? {
        "function_call" => &item["arguments"],
        "custom_tool_call" => &item["input"],
        _ => return None,
    };
    let name = item["name"].as_str().filter(|name| !name.is_empty())?;
    Some(ProposedCall {
        name: name.to_owned(),
        arguments: match text {
            serde_json::Value::String(text) => parse_arguments(text),
            serde_json::Value::Null => serde_json::json!({}),
            other => other.clone(),
        },
    })
}

/// A Gemini `GenerateContentResponse` (an answer or one stream chunk), as far as calls go.
#[derive(Deserialize)]
struct GeminiAnswer {
    #[serde(default)]
    candidates: Vec<GeminiCandidate>,
}

#[derive(Deserialize)]
struct GeminiCandidate {
    #[serde(default)]
    content: Option<GeminiContent>,
}

#[derive(Deserialize)]
struct GeminiContent {
    #[serde(default)]
    parts: Vec<GeminiPart>,
}

#[derive(Deserialize)]
struct GeminiPart {
    #[serde(default, rename = "functionCall")]
    function_call: Option<GeminiCall>,
}

#[derive(Deserialize)]
struct GeminiCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

impl GeminiAnswer {
    fn calls(self) -> Vec<ProposedCall> {
        self.candidates
            .into_iter()
            .filter_map(|candidate| candidate.content)
            .flat_map(|content| content.parts)
            .filter_map(|part| part.function_call)
            .filter(|call| !call.name.is_empty())
            .map(|call| ProposedCall {
                name: call.name,
                arguments: call.args.unwrap_or_else(|| serde_json::json!({})),
            })
            .collect()
    }
}

/// The tool calls a whole buffered SSE stream proposes, with their arguments put back together
/// from the fragments the provider streamed (OpenAI `delta.tool_calls[].function.arguments`,
/// Anthropic `input_json_delta`, Responses `response.function_call_arguments.delta`; Gemini
/// streams each `functionCall` whole). Used only where a stream is held for review, never on the
/// pass-through path.
pub fn streamed_calls(dialect: Dialect, sse: &[u8]) -> Vec<ProposedCall> {
    let mut calls = StreamedCalls::default();
    let mut framer = crate::sse::Framer::default();
    let mut rest = sse;
    while !rest.is_empty() {
        let (raw, next) = match framer.find_end(rest) {
            // The previous event ended on a bare `\r`; the framer is reset, nothing to read.
            Some(0) => continue,
            Some(end) => (
                rest.get(..end).unwrap_or(b""),
                rest.get(end..).unwrap_or(b""),
            ),
            None => (rest, &b""[..]),
        };
        let event = crate::sse::parse_event(raw);
        if let Ok(data) = serde_json::from_slice::<serde_json::Value>(&event.data) {
            match dialect {
                Dialect::OpenAi => calls.openai_chunk(&data),
                Dialect::Anthropic => calls.anthropic_event(&data),
                Dialect::Responses => calls.responses_event(&data),
                Dialect::Gemini => calls.gemini_chunk(&data),
            }
        }
        rest = next;
    }
    calls.finish()
}

/// Calls being assembled, in the order they started.
#[derive(Default)]
struct StreamedCalls {
    calls: Vec<StreamedCall>,
}

struct StreamedCall {
    /// (choice index, tool call index); Anthropic has one choice. Responses: (0, output index);
    /// Gemini: (candidate index, order of arrival).
    key: (u64, u64),
    /// The output item's `id` (Responses), by which later events may refer to the call.
    id: String,
    name: String,
    /// The streamed arguments text, joined.
    text: String,
    /// The arguments the call started with (Anthropic's `input`).
    input: serde_json::Value,
}

impl StreamedCalls {
    fn entry(&mut self, key: (u64, u64)) -> &mut StreamedCall {
        let at = match self.calls.iter().position(|c| c.key == key) {
            Some(at) => at,
            None => {
                self.calls.push(StreamedCall {
                    key,
                    id: String::new(),
                    name: String::new(),
                    text: String::new(),
                    input: serde_json::Value::Null,
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[at]
    }

    fn openai_chunk(&mut self, chunk: &serde_json::Value) {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let choice_at = choice["index"].as_u64().unwrap_or(0);
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let entry = self.entry((choice_at, call["index"].as_u64().unwrap_or(0)));
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.name.push_str(name);
                }
                if let Some(text) = call["function"]["arguments"].as_str() {
                    entry.text.push_str(text);
                }
            }
        }
    }

    fn anthropic_event(&mut self, event: &serde_json::Value) {
        let key = (0, event["index"].as_u64().unwrap_or(0));
        match event["type"].as_str() {
            Some("content_block_start") if event["content_block"]["type"] == "tool_use" => {
                let entry = self.entry(key);
                entry
                    .name
                    .push_str(event["content_block"]["name"].as_str().unwrap_or_default());
                entry.input = event["content_block"]["input"].clone();
            }
            Some("content_block_delta")
                if event["delta"]["type"] == "input_json_delta"
                    && self.calls.iter().any(|c| c.key == key) =>
            {
                self.entry(key)
                    .text
                    .push_str(event["delta"]["partial_json"].as_str().unwrap_or_default());
            }
            _ => {}
        }
    }

    /// Responses events: a call starts with `response.output_item.added`, its arguments arrive
    /// in `.delta` fragments, and `.done` (or `response.output_item.done`) repeats them whole.
    fn responses_event(&mut self, event: &serde_json::Value) {
        let kind = event["type"].as_str().unwrap_or_default();
        match kind {
            "response.output_item.added" | "response.output_item.done" => {
                let item = &event["item"];
                let text = match item["type"].as_str() {
                    Some("function_call") => &item["arguments"],
                    Some("custom_tool_call") => &item["input"],
                    _ => return,
                };
                let entry = self.responses_entry(event, item["id"].as_str());
                if let Some(name) = item["name"].as_str().filter(|_| entry.name.is_empty()) {
                    entry.name.push_str(name);
                }
                if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
                    text.clone_into(&mut entry.text);
                }
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let delta = event["delta"].as_str().unwrap_or_default();
                let entry = self.responses_entry(event, event["item_id"].as_str());
                entry.text.push_str(delta);
            }
            "response.function_call_arguments.done" | "response.custom_tool_call_input.done" => {
                let whole = &event[if kind.ends_with("arguments.done") {
                    "arguments"
                } else {
                    "input"
                }];
                if let Some(whole) = whole.as_str() {
                    let entry = self.responses_entry(event, event["item_id"].as_str());
                    whole.clone_into(&mut entry.text);
                }
            }
            _ => {}
        }
    }

    /// The call an event refers to: by `output_index`, else by item id, else a new one (keyed
    /// apart from every output index, as Responses has a single "choice" 0).
    fn responses_entry(
        &mut self,
        event: &serde_json::Value,
        id: Option<&str>,
    ) -> &mut StreamedCall {
        let id = id.unwrap_or_default();
        let key = match event["output_index"].as_u64() {
            Some(index) => (0, index),
            None => match self.calls.iter().find(|c| !id.is_empty() && c.id == id) {
                Some(known) => known.key,
                None => (1, self.calls.len() as u64),
            },
        };
        let entry = self.entry(key);
        if entry.id.is_empty() {
            id.clone_into(&mut entry.id);
        }
        entry
    }

    /// Gemini sends each `functionCall` part whole, in one chunk.
    fn gemini_chunk(&mut self, chunk: &serde_json::Value) {
        for (at, candidate) in chunk["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let candidate_at = candidate["index"].as_u64().unwrap_or(at as u64);
            for part in candidate["content"]["parts"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let call = &part["functionCall"];
                let Some(name) = call["name"].as_str() else {
                    continue;
                };
                let key = (candidate_at, self.calls.len() as u64);
                let entry = self.entry(key);
                entry.name.push_str(name);
                entry.input = match &call["args"] {
                    serde_json::Value::Null => serde_json::json!({}),
                    args => args.clone(),
                };
            }
        }
    }

    fn finish(self) -> Vec<ProposedCall> {
        self.calls
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| ProposedCall {
                arguments: match (c.text.is_empty(), c.input.is_null()) {
                    (false, _) => parse_arguments(&c.text),
                    (true, false) => c.input,
                    (true, true) => serde_json::json!({}),
                },
                name: c.name,
            })
            .collect()
    }
}

/// Names of the tool calls in an OpenAI answer or stream chunk.
pub(crate) fn openai(body: &[u8]) -> Vec<String> {
    proposed_tools(Dialect::OpenAi, body)
}

/// Names of the tool calls in a Gemini answer or stream chunk.
pub(crate) fn gemini(body: &[u8]) -> Vec<String> {
    proposed_tools(Dialect::Gemini, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tool_calls_in_both_dialects() {
        let check = |dialect, body: &str, expected: &[&str]| {
            assert_eq!(proposed_tools(dialect, body.as_bytes()), expected)
        };
        check(
            Dialect::OpenAi,
            r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{}"}},{"function":{"name":"send_email"}}]}}]}"#,
            &["get_weather", "send_email"],
        );
        check(
            Dialect::OpenAi,
            r#"{"choices":[{"message":{"content":"hi"}}]}"#,
            &[],
        );
        check(
            Dialect::Anthropic,
            r#"{"content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"search","input":{}}]}"#,
            &["search"],
        );
        check(Dialect::Anthropic, "not json", &[]);
    }

    #[test]
    fn reads_arguments_in_both_dialects() {
        let openai = proposed_calls(
            Dialect::OpenAi,
            br#"{"choices":[{"message":{"tool_calls":[{"function":{"name":"issue_refund","arguments":"{\"amount_usd\":750}"}},{"function":{"name":"x","arguments":"not json"}}]}}]}"#,
        );
        assert_eq!(openai[0].name, "issue_refund");
        assert_eq!(openai[0].arguments["amount_usd"], 750);
        assert_eq!(openai[1].arguments, serde_json::json!("not json"));
        let anthropic = proposed_calls(
            Dialect::Anthropic,
            br#"{"content":[{"type":"tool_use","id":"t","name":"issue_refund","input":{"amount_usd":20}}]}"#,
        );
        assert_eq!(anthropic[0].arguments["amount_usd"], 20);
    }

    #[test]
    fn puts_streamed_arguments_back_together_in_both_dialects() {
        let openai = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"issue_refund\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"amount_usd\\\":\"}}]}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"750}\"}}]}}]}\n\n",
            "data: [DONE]\n\n",
        );
        let calls = streamed_calls(Dialect::OpenAi, openai.as_bytes());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "issue_refund");
        assert_eq!(calls[0].arguments["amount_usd"], 750);
        let anthropic = concat!(
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"name\":\"issue_refund\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"amount_usd\\\": 9\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"00}\"}}\n\n",
        );
        let calls = streamed_calls(Dialect::Anthropic, anthropic.as_bytes());
        assert_eq!(calls[0].arguments["amount_usd"], 900);
        assert!(streamed_calls(Dialect::OpenAi, b"data: {\"choices\":[]}\n\n").is_empty());
    }

    #[test]
    fn reads_function_calls_of_a_responses_answer() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed",
            "model":"gpt-4.1-2025-04-14","output":[
            {"type":"web_search_call","id":"ws_1","status":"completed"},
            {"type":"message","id":"msg_1","status":"completed","role":"assistant",
             "content":[{"type":"output_text","text":"Checking.","annotations":[]}]},
            {"type":"function_call","id":"fc_12345xyz","call_id":"call_12345xyz",
             "name":"get_weather","arguments":"{\"location\":\"Paris, France\"}",
             "status":"completed"},
            {"type":"custom_tool_call","id":"ctc_1","call_id":"call_2","name":"code_exec",
             "input":"print('hello world')"},
            {"type":"function_call","name":"","arguments":"{}"}],
            "usage":{"input_tokens":291,"output_tokens":23,"total_tokens":314}}"#;
        let calls = proposed_calls(Dialect::Responses, body);
        let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "code_exec"]);
        assert_eq!(calls[0].arguments["location"], "Paris, France");
        assert_eq!(
            calls[1].arguments,
            serde_json::json!("print('hello world')")
        );
        assert!(proposed_calls(Dialect::Responses, br#"{"output":"odd"}"#).is_empty());
    }

    #[test]
    fn reads_function_calls_of_a_gemini_answer() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[
            {"text":"Scheduling it."},
            {"functionCall":{"name":"schedule_meeting","args":{"attendees":["Bob","Alice"],
             "date":"2025-03-27","time":"10:00","topic":"Q3 planning"}}},
            {"functionCall":{"name":"get_time"}}]},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":118,"candidatesTokenCount":36,
            "totalTokenCount":154},"modelVersion":"gemini-2.5-flash"}"#;
        let calls = proposed_calls(Dialect::Gemini, body);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "schedule_meeting");
        assert_eq!(calls[0].arguments["attendees"][1], "Alice");
        assert_eq!(calls[1].arguments, serde_json::json!({}));
        assert_eq!(
            proposed_tools(
                Dialect::Gemini,
                br#"{"candidates":[{"finishReason":"SAFETY"}]}"#
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn puts_streamed_calls_back_together_for_responses_and_gemini() {
        let golden = include_str!("../tests/golden/responses_tools.sse");
        let calls = streamed_calls(Dialect::Responses, golden.as_bytes());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(calls[0].arguments["location"], "Paris, France");
        // Deltas alone (no `.done` repeating them) are enough; the item id finds the call when
        // `output_index` is missing.
        let deltas = concat!(
            "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"type\":\"function_call\",\"id\":\"fc_9\",\"call_id\":\"call_9\",\"name\":\"issue_refund\",\"arguments\":\"\"}}\n\n",
            "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_9\",\"output_index\":2,\"delta\":\"{\\\"amount_usd\\\":\"}\n\n",
            "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_9\",\"delta\":\"750}\"}\n\n",
        );
        let calls = streamed_calls(Dialect::Responses, deltas.as_bytes());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments["amount_usd"], 750);

        let golden = include_str!("../tests/golden/gemini_tools.sse");
        let calls = streamed_calls(Dialect::Gemini, golden.as_bytes());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "schedule_meeting");
        assert_eq!(calls[0].arguments["topic"], "Q3 planning");
    }
}
