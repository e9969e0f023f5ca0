//! Messages streams: `message_start`, content blocks (`content_block_start` / `_delta` /
//! `_stop`), `message_delta` with the stop reason and usage, `message_stop`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{read_stop, read_usage, write_stop, write_usage};
use crate::translate::ir::Stop;
use crate::translate::read::{count, text};
use crate::translate::stream::{self, Answer, Delta, Meta, error_message, sse};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Raw usage members seen so far, merged like the tap does: output is cumulative (latest
    /// wins), input counts only grow.
    usage: HashMap<&'static str, u64>,
}

const USAGE_KEYS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

impl Reader {
    fn merge_usage(&mut self, usage: &Value, out: &mut Vec<Delta>) {
        if !usage.is_object() {
            return;
        }
        for key in USAGE_KEYS {
            let Some(n) = usage.get(key).and_then(Value::as_u64) else {
                continue;
            };
            let slot = self.usage.entry(key).or_insert(0);
            *slot = if key == "output_tokens" {
                n
            } else {
                (*slot).max(n)
            };
        }
        let merged: serde_json::Map<String, Value> = self
            .usage
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        out.push(Delta::Usage(read_usage(&Value::Object(merged))));
    }
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
        match kind.as_str() {
            "message_start" => {
                let message = event.get("message").unwrap_or(&Value::Null);
                out.push(Delta::Start {
                    id: text(message.get("id")).map(str::to_owned),
                });
                if let Some(usage) = message.get("usage") {
                    self.merge_usage(usage, out);
                }
            }
            "content_block_start" => {
                let key = count(event.get("index"));
                let block = event.get("content_block").unwrap_or(&Value::Null);
                match text(block.get("type")) {
                    Some("tool_use") => out.push(Delta::ToolStart {
                        key,
                        id: text(block.get("id")).unwrap_or_default().to_owned(),
                        name: text(block.get("name")).unwrap_or_default().to_owned(),
                    }),
                    Some("text") => {
                        if let Some(t) = text(block.get("text")).filter(|t| !t.is_empty()) {
                            out.push(Delta::Text(t.to_owned()));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let key = count(event.get("index"));
                let delta = event.get("delta").unwrap_or(&Value::Null);
                match text(delta.get("type")) {
                    Some("text_delta") => {
                        if let Some(t) = text(delta.get("text")).filter(|t| !t.is_empty()) {
                            out.push(Delta::Text(t.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(args) =
                            text(delta.get("partial_json")).filter(|a| !a.is_empty())
                        {
                            out.push(Delta::ToolArgs {
                                key,
                                args: args.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                if let Some(reason) = text(delta.get("stop_reason")) {
                    out.push(Delta::Stop(read_stop(reason)));
                }
                if let Some(usage) = event.get("usage") {
                    self.merge_usage(usage, out);
                }
            }
            "message_stop" => out.push(Delta::Done),
            "error" => {
                let error = event.get("error").unwrap_or(&event);
                out.push(Delta::Error(error_message(error)));
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text(usize),
    Tool(usize),
}

pub(crate) struct Writer {
    answer: Answer,
    started: bool,
    open: Option<Block>,
    next_index: usize,
    tools: HashMap<u64, usize>,
    stop: Option<Stop>,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Self {
        Writer {
            answer: Answer::new(meta),
            started: false,
            open: None,
            next_index: 0,
            tools: HashMap::new(),
            stop: None,
        }
    }

    /// `message_start` waits for the first content, so that usage the upstream reports up
    /// front (Gemini does) is in it; output is 0 there and final in `message_delta`.
    fn start(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let mut usage = write_usage(&self.answer.usage.unwrap_or_default());
        if let Some(object) = usage.as_object_mut() {
            object.insert("output_tokens".to_owned(), Value::from(0));
        }
        let message = json!({"type": "message_start", "message": {
            "id": self.answer.id_or("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.answer.meta.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage,
        }});
        sse(out, Some("message_start"), &message);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(Block::Text(index) | Block::Tool(index)) = self.open.take() {
            let stop = json!({"type": "content_block_stop", "index": index});
            sse(out, Some("content_block_stop"), &stop);
        }
    }

    fn open(&mut self, block: Value, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let start = json!({"type": "content_block_start", "index": index, "content_block": block});
        sse(out, Some("content_block_start"), &start);
        index
    }

    fn delta(out: &mut Vec<u8>, index: usize, delta: Value) {
        let event = json!({"type": "content_block_delta", "index": index, "delta": delta});
        sse(out, Some("content_block_delta"), &event);
    }
}

impl stream::Writer for Writer {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        match delta {
            kept @ (Delta::Start { .. } | Delta::Usage(_)) => self.answer.keep(kept),
            Delta::Text(content) => {
                self.start(out);
                let index = match self.open {
                    Some(Block::Text(index)) => index,
                    _ => {
                        let index = self.open(json!({"type": "text", "text": ""}), out);
                        self.open = Some(Block::Text(index));
                        index
                    }
                };
                Writer::delta(out, index, json!({"type": "text_delta", "text": content}));
            }
            Delta::ToolStart { key, id, name } => {
                self.start(out);
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let index = self.open(block, out);
                self.open = Some(Block::Tool(index));
                self.tools.insert(key, index);
            }
            Delta::ToolArgs { key, args } => {
                self.start(out);
                let Some(index) = self.tools.get(&key).copied() else {
                    return;
                };
                let delta = json!({"type": "input_json_delta", "partial_json": args});
                Writer::delta(out, index, delta);
            }
            Delta::Stop(stop) => {
                self.start(out);
                self.close(out);
                self.stop = Some(stop);
            }
            Delta::Done => {
                self.start(out);
                self.close(out);
                let stop = write_stop(self.stop.unwrap_or(Stop::EndTurn));
                let delta = json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": null},
                    "usage": write_usage(&self.answer.usage.unwrap_or_default()),
                });
                sse(out, Some("message_delta"), &delta);
                sse(out, Some("message_stop"), &json!({"type": "message_stop"}));
            }
            Delta::Error(message) => {
                let error =
                    json!({"type": "error", "error": {"type": "api_error", "message": message}});
                sse(out, Some("error"), &error);
            }
        }
    }
}
