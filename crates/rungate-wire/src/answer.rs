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
}
