//! Responses streams: typed lifecycle events (`response.created`, `response.output_item.added`,
//! `response.output_text.delta`, ..., `response.completed`), each with a `sequence_number`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{call_item, message_item, read_status, read_usage, response_object};
use crate::translate::ir::Stop;
use crate::translate::read::{count, text};
use crate::translate::stream::{self, Answer, Delta, Meta, error_message, sse};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    called_tools: bool,
}

impl stream::Reader for Reader {
    fn event(&mut self, name: Option<&[u8]>, data: &[u8], out: &mut Vec<Delta>) {
        let Some(event) = stream::json(data) else {
            return;
        };
        let kind = match name {
            Some(name) => String::from_utf8_lossy(name).into_owned(),
            None => text(event.get("type")).unwrap_or_default().to_owned(),
        };
        let key = count(event.get("output_index"));
        match kind.as_str() {
            "response.created" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                out.push(Delta::Start {
                    id: text(response.get("id")).map(str::to_owned),
                });
            }
            "response.output_item.added" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                if text(item.get("type")) == Some("function_call") {
                    self.called_tools = true;
                    out.push(Delta::ToolStart {
                        key,
                        id: text(item.get("call_id")).unwrap_or_default().to_owned(),
                        name: text(item.get("name")).unwrap_or_default().to_owned(),
                    });
                    if let Some(args) = text(item.get("arguments")).filter(|a| !a.is_empty()) {
                        out.push(Delta::ToolArgs {
                            key,
                            args: args.to_owned(),
                        });
                    }
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(delta) = text(event.get("delta")).filter(|d| !d.is_empty()) {
                    out.push(Delta::Text(delta.to_owned()));
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(delta) = text(event.get("delta")).filter(|d| !d.is_empty()) {
                    out.push(Delta::ToolArgs {
                        key,
                        args: delta.to_owned(),
                    });
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                if let Some(usage) = response.get("usage").filter(|u| u.is_object()) {
                    out.push(Delta::Usage(read_usage(usage)));
                }
                out.push(Delta::Stop(read_status(response, self.called_tools)));
                out.push(Delta::Done);
            }
            "response.failed" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                let error = response.get("error").unwrap_or(&Value::Null);
                out.push(Delta::Error(error_message(error)));
            }
            "error" => {
                let error = event.get("error").unwrap_or(&event);
                out.push(Delta::Error(error_message(error)));
            }
            _ => {}
        }
    }
}

#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
}

pub(crate) struct Writer {
    answer: Answer,
    started: bool,
    sequence: u64,
    /// Finished items, as `response.completed` lists them.
    output: Vec<Value>,
    open: Option<Item>,
    /// Upstream tool key → output index, for fragments of the open call.
    tools: HashMap<u64, usize>,
    stop: Option<Stop>,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Self {
        Writer {
            answer: Answer::new(meta),
            started: false,
            sequence: 0,
            output: Vec::new(),
            open: None,
            tools: HashMap::new(),
            stop: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut event: Value) {
        if let Some(object) = event.as_object_mut() {
            object.insert("type".to_owned(), Value::from(kind));
            object.insert("sequence_number".to_owned(), Value::from(self.sequence));
        }
        self.sequence += 1;
        sse(out, Some(kind), &event);
    }

    fn response(&self, output: Vec<Value>, in_progress: bool) -> Value {
        response_object(
            &self.answer.id_or("resp_"),
            self.answer.meta.created,
            &self.answer.meta.model,
            self.stop,
            output,
            self.answer.usage.as_ref().filter(|_| !in_progress),
            in_progress,
        )
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = self.response(Vec::new(), true);
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(Item::Message { id, text }) => {
                let part = json!({"type": "output_text", "annotations": [], "text": text});
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = at.clone();
                insert(&mut done, "text", Value::from(text.as_str()));
                self.emit(out, "response.output_text.done", done);
                let mut part_done = at;
                insert(&mut part_done, "part", part);
                self.emit(out, "response.content_part.done", part_done);
                message_item(&id, "completed", &text)
            }
            Some(Item::Call {
                id,
                call_id,
                name,
                args,
            }) => {
                let done = json!({"item_id": id, "output_index": index, "arguments": args});
                self.emit(out, "response.function_call_arguments.done", done);
                call_item(&id, "completed", &call_id, &name, &args)
            }
        };
        let done = json!({"output_index": index, "item": item});
        self.emit(out, "response.output_item.done", done);
        self.output.push(item);
    }
}

impl Writer {
    fn open_message(&mut self, out: &mut Vec<u8>) {
        let index = self.output.len();
        let id = format!("msg_{index}");
        let mut item = message_item(&id, "in_progress", "");
        insert(&mut item, "content", json!([]));
        let added = json!({"output_index": index, "item": item});
        self.emit(out, "response.output_item.added", added);
        let part = json!({"type": "output_text", "annotations": [], "text": ""});
        let added = json!({"item_id": id, "output_index": index, "content_index": 0, "part": part});
        self.emit(out, "response.content_part.added", added);
        self.open = Some(Item::Message {
            id,
            text: String::new(),
        });
    }
}

fn insert(event: &mut Value, key: &str, value: Value) {
    if let Some(object) = event.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

impl stream::Writer for Writer {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        match delta {
            kept @ (Delta::Start { .. } | Delta::Usage(_)) => self.answer.keep(kept),
            Delta::Text(content) => {
                self.start(out);
                if !matches!(self.open, Some(Item::Message { .. })) {
                    self.close(out);
                    self.open_message(out);
                }
                // The open item is always the one after the finished ones.
                let index = self.output.len();
                let Some(Item::Message { id, text }) = self.open.as_mut() else {
                    return;
                };
                text.push_str(&content);
                let event = json!({
                    "item_id": id.clone(),
                    "output_index": index,
                    "content_index": 0,
                    "delta": content,
                });
                self.emit(out, "response.output_text.delta", event);
            }
            Delta::ToolStart { key, id, name } => {
                self.start(out);
                self.close(out);
                let index = self.output.len();
                let item_id = format!("fc_{index}");
                let item = call_item(&item_id, "in_progress", &id, &name, "");
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                self.tools.insert(key, index);
                self.open = Some(Item::Call {
                    id: item_id,
                    call_id: id,
                    name,
                    args: String::new(),
                });
            }
            Delta::ToolArgs { key, args } => {
                let index = self.output.len();
                if self.tools.get(&key) != Some(&index) {
                    // Fragments of a call already closed cannot be said any more.
                    return;
                }
                if let Some(Item::Call { id, args: all, .. }) = self.open.as_mut() {
                    all.push_str(&args);
                    let event =
                        json!({"item_id": id.clone(), "output_index": index, "delta": args});
                    self.emit(out, "response.function_call_arguments.delta", event);
                }
            }
            Delta::Stop(stop) => {
                self.start(out);
                self.close(out);
                self.stop = Some(stop);
            }
            Delta::Done => {
                self.start(out);
                self.close(out);
                let response = self.response(self.output.clone(), false);
                let kind = match response.get("status").and_then(Value::as_str) {
                    Some("incomplete") => "response.incomplete",
                    _ => "response.completed",
                };
                self.emit(out, kind, json!({"response": response}));
            }
            Delta::Error(message) => {
                let error = json!({"code": null, "message": message, "param": null});
                self.emit(out, "error", error);
            }
        }
    }
}
