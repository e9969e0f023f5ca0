//! What a non-streaming answer proposes to do: the names of the tools the model calls.
//! Governance reads only these names; the answer's bytes are forwarded untouched.

use serde::Deserialize;

use crate::Dialect;

/// Tool names the model called in a JSON answer, in order (repeats kept); empty when the body
/// is not an answer or calls no tool.
pub fn proposed_tools(dialect: Dialect, body: &[u8]) -> Vec<String> {
    match dialect {
        Dialect::OpenAi => openai(body),
        Dialect::Anthropic => anthropic(body),
    }
}

/// Names of the tool calls in OpenAI `choices`, under `message` (an answer) or `delta` (a
/// stream chunk, where a call's name arrives once, in its first delta).
pub(crate) fn openai(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        message: Option<Calls>,
        #[serde(default)]
        delta: Option<Calls>,
    }
    #[derive(Deserialize)]
    struct Calls {
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
        name: Option<String>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer
        .choices
        .into_iter()
        .filter_map(|c| c.message.or(c.delta)?.tool_calls)
        .flatten()
        .filter_map(|call| call.function?.name)
        .filter(|name| !name.is_empty())
        .collect()
}

fn anthropic(body: &[u8]) -> Vec<String> {
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
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer
        .content
        .into_iter()
        .filter(|block| block.kind == "tool_use" && !block.name.is_empty())
        .map(|block| block.name)
        .collect()
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
}
