//! Chat Completions streams: `chat.completion.chunk` events, a usage-only chunk
//! (`"choices": []`) and `data: [DONE]`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{read_stop, read_usage, write_stop, write_usage};
use crate::translate::read::text;
use crate::translate::stream::{self, Answer, Delta, Meta, error_message, sse};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    started: bool,
}

impl stream::Reader for Reader {
    fn event(&mut self, _name: Option<&[u8]>, data: &[u8], out: &mut Vec<Delta>) {
        if data.trim_ascii() == b"[DONE]" {
            out.push(Delta::Done);
            return;
        }
        let Some(chunk) = stream::json(data) else {
            return;
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            out.push(Delta::Error(error_message(error)));
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            out.push(Delta::Start {
                id: text(chunk.get("id")).map(str::to_owned),
            });
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        if let Some(choice) = choice {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(content) = text(delta.get("content")).filter(|c| !c.is_empty()) {
                out.push(Delta::Text(content.to_owned()));
            }
            if let Some(refusal) = text(delta.get("refusal")).filter(|c| !c.is_empty()) {
                out.push(Delta::Text(refusal.to_owned()));
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                read_call_delta(call, out);
            }
            if let Some(reason) = text(choice.get("finish_reason")) {
                out.push(Delta::Stop(read_stop(reason)));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            out.push(Delta::Usage(read_usage(usage)));
        }
    }
}

/// A call's id and name come in its first delta, its arguments in pieces after.
fn read_call_delta(call: &Value, out: &mut Vec<Delta>) {
    let key = call.get("index").and_then(Value::as_u64).unwrap_or(0);
    let function = call.get("function").unwrap_or(&Value::Null);
    if let Some(name) = text(function.get("name")) {
        out.push(Delta::ToolStart {
            key,
            id: text(call.get("id")).unwrap_or_default().to_owned(),
            name: name.to_owned(),
        });
    }
    if let Some(args) = text(function.get("arguments")).filter(|a| !a.is_empty()) {
        out.push(Delta::ToolArgs {
            key,
            args: args.to_owned(),
        });
    }
}

pub(crate) struct Writer {
    answer: Answer,
    started: bool,
    /// Upstream tool key → OpenAI `tool_calls[].index`.
    tools: HashMap<u64, usize>,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Self {
        Writer {
            answer: Answer::new(meta),
            started: false,
            tools: HashMap::new(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        self.chunk_with(json!([choice]), None)
    }

    /// A `chat.completion.chunk` with these choices, and usage when it is the usage-only one.
    fn chunk_with(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.answer.id_or("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": self.answer.meta.created,
            "model": self.answer.meta.model,
            "choices": choices,
        });
        if let (Some(object), Some(usage)) = (chunk.as_object_mut(), usage) {
            object.insert("usage".to_owned(), usage);
        }
        chunk
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !std::mem::replace(&mut self.started, true) {
            let chunk = self.chunk(json!({"role": "assistant", "content": ""}), None);
            sse(out, None, &chunk);
        }
    }
}

impl stream::Writer for Writer {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        match delta {
            kept @ (Delta::Start { .. } | Delta::Usage(_)) => self.answer.keep(kept),
            Delta::Text(content) => {
                self.start(out);
                sse(out, None, &self.chunk(json!({"content": content}), None));
            }
            Delta::ToolStart { key, id, name } => {
                self.start(out);
                let index = self.tools.len();
                self.tools.insert(key, index);
                let call = json!({
                    "index": index,
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                });
                sse(out, None, &self.chunk(json!({"tool_calls": [call]}), None));
            }
            Delta::ToolArgs { key, args } => {
                self.start(out);
                let index = self.tools.get(&key).copied().unwrap_or(0);
                let call = json!({"index": index, "function": {"arguments": args}});
                sse(out, None, &self.chunk(json!({"tool_calls": [call]}), None));
            }
            Delta::Stop(stop) => {
                self.start(out);
                sse(out, None, &self.chunk(json!({}), Some(write_stop(stop))));
            }
            Delta::Done => {
                self.start(out);
                if let Some(usage) = &self.answer.usage {
                    let chunk = self.chunk_with(json!([]), Some(write_usage(usage)));
                    sse(out, None, &chunk);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Delta::Error(message) => {
                let error = json!({"error": {
                    "message": message,
                    "type": "server_error",
                    "param": null,
                    "code": null,
                }});
                sse(out, None, &error);
            }
        }
    }
}
