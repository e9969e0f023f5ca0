//! Messages answers.

use serde_json::{Map, Value, json};

use super::{read_stop, read_usage, write_stop, write_usage};
use crate::translate::ir::{self, Answer, Part, ToolCall};
use crate::translate::read::{Object, arguments_text, get, text};
use crate::translate::{ResponseOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Answer, TranslateError> {
    let content = get(body, "content")
        .and_then(Value::as_array)
        .ok_or(TranslateError::MissingField("content"))?;
    let mut answer = Answer {
        id: text(body.get("id")).map(str::to_owned),
        stop: text(body.get("stop_reason")).map(read_stop),
        usage: get(body, "usage").map(read_usage),
        ..Answer::default()
    };
    for block in content {
        match text(block.get("type")) {
            Some("text") => {
                if let Some(content) = text(block.get("text")) {
                    answer.parts.push(Part::Text(content.to_owned()));
                }
            }
            Some("tool_use") => answer.parts.push(Part::ToolCall(ToolCall {
                id: text(block.get("id")).unwrap_or_default().to_owned(),
                name: text(block.get("name")).unwrap_or_default().to_owned(),
                arguments: arguments_text(block.get("input")),
            })),
            _ => {}
        }
    }
    Ok(answer)
}

pub(crate) fn write(answer: &Answer, opts: &ResponseOptions) -> Map<String, Value> {
    let content: Vec<Value> = answer
        .parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(content) => Some(json!({"type": "text", "text": content})),
            Part::ToolCall(call) => Some(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": ir::arguments_object(&call.arguments).unwrap_or_else(|| json!({})),
            })),
            Part::Image(_) | Part::ToolResult(_) => None,
        })
        .collect();
    let mut body = Map::new();
    let id = answer
        .id
        .clone()
        .unwrap_or_else(|| format!("msg_{}", opts.created_unix));
    body.insert("id".to_owned(), Value::from(id));
    body.insert("type".to_owned(), json!("message"));
    body.insert("role".to_owned(), json!("assistant"));
    body.insert("model".to_owned(), json!(opts.model));
    body.insert("content".to_owned(), Value::Array(content));
    body.insert(
        "stop_reason".to_owned(),
        json!(write_stop(answer.stop.unwrap_or(ir::Stop::EndTurn))),
    );
    body.insert("stop_sequence".to_owned(), Value::Null);
    body.insert(
        "usage".to_owned(),
        write_usage(&answer.usage.unwrap_or_default()),
    );
    body
}
