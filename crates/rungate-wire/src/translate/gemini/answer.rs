//! `generateContent` answers: the first candidate only.

use serde_json::{Map, Value, json};

use super::{call_id, read_stop, read_usage, write_stop, write_usage};
use crate::translate::ir::{self, Answer, Part, Stop, ToolCall};
use crate::translate::read::{Object, arguments_text, get_camel, text};
use crate::translate::{ResponseOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Answer, TranslateError> {
    let root = Value::Object(body.clone());
    let id = text(get_camel(&root, "responseId")).map(str::to_owned);
    let usage = get_camel(&root, "usageMetadata").map(read_usage);
    let candidate = root
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(candidate) = candidate else {
        // A blocked prompt has no candidate, only `promptFeedback.blockReason`.
        if get_camel(&root, "promptFeedback").is_some() {
            return Ok(Answer {
                id,
                parts: Vec::new(),
                stop: Some(Stop::ContentFilter),
                usage,
            });
        }
        return Err(TranslateError::MissingField("candidates"));
    };
    let mut parts = Vec::new();
    let mut calls = 0;
    let content = candidate.get("content").unwrap_or(&Value::Null);
    for part in get_camel(content, "parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(part) = read_part(part, id.as_deref(), &mut calls) {
            parts.push(part);
        }
    }
    let stop = text(get_camel(candidate, "finishReason")).map(|r| read_stop(r, calls > 0));
    Ok(Answer {
        id,
        parts,
        stop,
        usage,
    })
}

/// A text or function-call part of an answer; thoughts and anything else are skipped.
pub(crate) fn read_part(
    part: &Value,
    response_id: Option<&str>,
    calls: &mut usize,
) -> Option<Part> {
    if part.get("thought").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    if let Some(content) = text(part.get("text")) {
        return Some(Part::Text(content.to_owned()));
    }
    let call = get_camel(part, "functionCall")?;
    let id = match text(call.get("id")) {
        Some(id) => id.to_owned(),
        None => call_id(response_id, *calls),
    };
    *calls += 1;
    Some(Part::ToolCall(ToolCall {
        id,
        name: text(call.get("name")).unwrap_or_default().to_owned(),
        arguments: arguments_text(call.get("args")),
    }))
}

pub(crate) fn write_part(part: &Part) -> Option<Value> {
    match part {
        Part::Text(content) => Some(json!({"text": content})),
        Part::ToolCall(call) => Some(json!({"functionCall": {
            "name": call.name,
            "args": ir::arguments_object(&call.arguments).unwrap_or_else(|| json!({})),
        }})),
        Part::Image(_) | Part::ToolResult(_) => None,
    }
}

pub(crate) fn write(answer: &Answer, opts: &ResponseOptions) -> Map<String, Value> {
    let parts: Vec<Value> = answer.parts.iter().filter_map(write_part).collect();
    let candidate = json!({
        "content": {"role": "model", "parts": parts},
        "finishReason": write_stop(answer.stop.unwrap_or(Stop::EndTurn)),
        "index": 0,
    });
    let mut body = Map::new();
    body.insert("candidates".to_owned(), json!([candidate]));
    if let Some(usage) = &answer.usage {
        body.insert("usageMetadata".to_owned(), write_usage(usage));
    }
    body.insert("modelVersion".to_owned(), json!(opts.model));
    if let Some(id) = &answer.id {
        body.insert("responseId".to_owned(), json!(id));
    }
    body
}
