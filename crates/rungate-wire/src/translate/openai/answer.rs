//! Chat Completions answers: the first choice only (a translated request never asks for more).

use serde_json::{Map, Value, json};

use super::{read_stop, read_usage, write_stop, write_usage};
use crate::translate::ir::{Answer, Part, ToolCall};
use crate::translate::read::{Object, get, text};
use crate::translate::{ResponseOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Answer, TranslateError> {
    let choice = get(body, "choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or(TranslateError::MissingField("choices"))?;
    let mut answer = Answer {
        id: text(body.get("id")).map(str::to_owned),
        stop: text(choice.get("finish_reason")).map(read_stop),
        usage: get(body, "usage").map(read_usage),
        ..Answer::default()
    };
    let message = choice.get("message").unwrap_or(&Value::Null);
    match message.get("content") {
        Some(Value::String(content)) if !content.is_empty() => {
            answer.parts.push(Part::Text(content.clone()));
        }
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(content) = text(part.get("text")) {
                    answer.parts.push(Part::Text(content.to_owned()));
                }
            }
        }
        _ => {}
    }
    if let Some(refusal) = text(message.get("refusal")) {
        answer.parts.push(Part::Text(refusal.to_owned()));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        answer.parts.push(Part::ToolCall(ToolCall {
            id: text(call.get("id")).unwrap_or_default().to_owned(),
            name: text(function.get("name")).unwrap_or_default().to_owned(),
            arguments: text(function.get("arguments"))
                .unwrap_or_default()
                .to_owned(),
        }));
    }
    Ok(answer)
}

pub(crate) fn write(answer: &Answer, opts: &ResponseOptions) -> Map<String, Value> {
    let message = super::request::write_assistant(&answer.parts);
    let mut body = Map::new();
    body.insert(
        "id".to_owned(),
        Value::from(
            answer
                .id
                .clone()
                .unwrap_or_else(|| format!("chatcmpl-{}", opts.created_unix)),
        ),
    );
    body.insert("object".to_owned(), json!("chat.completion"));
    body.insert("created".to_owned(), json!(opts.created_unix));
    body.insert("model".to_owned(), json!(opts.model));
    body.insert(
        "choices".to_owned(),
        json!([{
            "index": 0,
            "message": message,
            "finish_reason": answer.stop.map(write_stop).unwrap_or("stop"),
        }]),
    );
    if let Some(usage) = &answer.usage {
        body.insert("usage".to_owned(), write_usage(usage));
    }
    body
}
