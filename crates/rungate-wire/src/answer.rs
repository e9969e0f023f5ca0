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
    /// The parsed arguments (OpenAI's `arguments` text, Anthropic's `input`); arguments that are
    /// not JSON are kept as a string.
    pub arguments: serde_json::Value,
}

/// The tool calls in a JSON answer, in order, with their arguments.
pub fn proposed_calls(dialect: Dialect, body: &[u8]) -> Vec<ProposedCall> {
    match dialect {
        Dialect::OpenAi => openai_calls(body),
        Dialect::Anthropic => anthropic_calls(body),
        Dialect::Responses | Dialect::Gemini => Vec::new(),
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

/// The tool calls a whole buffered SSE stream proposes, with their arguments put back together
/// from the fragments the provider streamed (OpenAI `delta.tool_calls[].function.arguments`,
/// Anthropic `input_json_delta`). Used only where a stream is held for review, never on the
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
                Dialect::Responses | Dialect::Gemini => {}
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
    /// (choice index, tool call index); Anthropic has one choice.
    key: (u64, u64),
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
}
