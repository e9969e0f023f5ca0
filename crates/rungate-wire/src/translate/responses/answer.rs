//! Responses answers: `output` items (messages and function calls) and the `status`.

use serde_json::{Map, Value};

use super::{call_item, message_item, read_status, read_usage, response_object};
use crate::translate::ir::{Answer, Part, ToolCall};
use crate::translate::read::{Object, get, text};
use crate::translate::{ResponseOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Answer, TranslateError> {
    let output = get(body, "output")
        .and_then(Value::as_array)
        .ok_or(TranslateError::MissingField("output"))?;
    let mut parts = Vec::new();
    for item in output {
        match text(item.get("type")) {
            Some("message") => {
                for content in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let said = text(content.get("text")).or_else(|| text(content.get("refusal")));
                    if let Some(said) = said {
                        parts.push(Part::Text(said.to_owned()));
                    }
                }
            }
            Some("function_call") => parts.push(Part::ToolCall(ToolCall {
                id: text(item.get("call_id")).unwrap_or_default().to_owned(),
                name: text(item.get("name")).unwrap_or_default().to_owned(),
                arguments: text(item.get("arguments")).unwrap_or_default().to_owned(),
            })),
            _ => {}
        }
    }
    let called = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    Ok(Answer {
        id: text(body.get("id")).map(str::to_owned),
        stop: Some(read_status(&Value::Object(body.clone()), called)),
        usage: get(body, "usage").map(read_usage),
        parts,
    })
}

pub(crate) fn write(answer: &Answer, opts: &ResponseOptions) -> Map<String, Value> {
    let mut output = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    let flush = |texts: &mut Vec<&str>, output: &mut Vec<Value>| {
        if !texts.is_empty() {
            let id = format!("msg_{}", output.len());
            output.push(message_item(&id, "completed", &texts.join("\n")));
            texts.clear();
        }
    };
    for part in &answer.parts {
        match part {
            Part::Text(said) => texts.push(said),
            Part::ToolCall(call) => {
                flush(&mut texts, &mut output);
                let id = format!("fc_{}", output.len());
                output.push(call_item(
                    &id,
                    "completed",
                    &call.id,
                    &call.name,
                    &call.arguments,
                ));
            }
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    flush(&mut texts, &mut output);
    let id = answer
        .id
        .clone()
        .unwrap_or_else(|| format!("resp_{}", opts.created_unix));
    match response_object(
        &id,
        opts.created_unix,
        opts.model,
        answer.stop,
        output,
        answer.usage.as_ref(),
        false,
    ) {
        Value::Object(body) => body,
        _ => Map::new(),
    }
}
