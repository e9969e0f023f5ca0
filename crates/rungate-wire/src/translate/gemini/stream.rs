//! `streamGenerateContent?alt=sse` streams: every event is a whole `GenerateContentResponse`
//! holding the next parts; a tool call arrives whole; the last event carries `finishReason` and
//! the usage. There is no end-of-stream event, so the answer is complete when the stream ends
//! after a `finishReason`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{read_stop, read_usage, write_stop, write_usage};
use crate::translate::ir::{Part, Stop, ToolCall};
use crate::translate::read::{get_camel, text};
use crate::translate::stream::{self, Answer, Delta, Meta, error_message, sse};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    started: bool,
    response_id: Option<String>,
    calls: usize,
    finished: bool,
}

impl stream::Reader for Reader {
    fn event(&mut self, _name: Option<&[u8]>, data: &[u8], out: &mut Vec<Delta>) {
        let Some(chunk) = stream::json(data) else {
            return;
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            out.push(Delta::Error(error_message(error)));
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            self.response_id = text(get_camel(&chunk, "responseId")).map(str::to_owned);
            out.push(Delta::Start {
                id: self.response_id.clone(),
            });
        }
        if let Some(usage) = get_camel(&chunk, "usageMetadata") {
            out.push(Delta::Usage(read_usage(usage)));
        }
        let candidate = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let Some(candidate) = candidate else {
            if get_camel(&chunk, "promptFeedback")
                .and_then(|f| get_camel(f, "blockReason"))
                .is_some()
            {
                out.push(Delta::Stop(Stop::ContentFilter));
                self.finished = true;
            }
            return;
        };
        let content = candidate.get("content").unwrap_or(&Value::Null);
        for part in get_camel(content, "parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let read = super::answer::read_part(part, self.response_id.as_deref(), &mut self.calls);
            match read {
                Some(Part::Text(t)) if !t.is_empty() => out.push(Delta::Text(t)),
                Some(Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments,
                })) => {
                    let key = self.calls as u64;
                    out.push(Delta::ToolStart { key, id, name });
                    out.push(Delta::ToolArgs {
                        key,
                        args: arguments,
                    });
                }
                _ => {}
            }
        }
        if let Some(reason) = text(get_camel(candidate, "finishReason")) {
            out.push(Delta::Stop(read_stop(reason, self.calls > 0)));
            self.finished = true;
        }
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        if self.finished {
            out.push(Delta::Done);
        }
    }
}

pub(crate) struct Writer {
    answer: Answer,
    /// Tool calls being assembled (key, name, arguments so far), written whole at the end.
    calls: Vec<(u64, String, String)>,
    keys: HashMap<u64, usize>,
    stop: Option<Stop>,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Self {
        Writer {
            answer: Answer::new(meta),
            calls: Vec::new(),
            keys: HashMap::new(),
            stop: None,
        }
    }

    fn chunk(&self, candidate: Value, usage: Option<Value>) -> Value {
        let mut chunk = serde_json::Map::new();
        chunk.insert("candidates".to_owned(), json!([candidate]));
        if let Some(usage) = usage {
            chunk.insert("usageMetadata".to_owned(), usage);
        }
        chunk.insert("modelVersion".to_owned(), json!(self.answer.meta.model));
        if let Some(id) = &self.answer.id {
            chunk.insert("responseId".to_owned(), json!(id));
        }
        Value::Object(chunk)
    }
}

impl stream::Writer for Writer {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        match delta {
            kept @ (Delta::Start { .. } | Delta::Usage(_)) => self.answer.keep(kept),
            Delta::Text(content) => {
                let candidate = json!({
                    "content": {"role": "model", "parts": [{"text": content}]},
                    "index": 0,
                });
                sse(out, None, &self.chunk(candidate, None));
            }
            Delta::ToolStart { key, id: _, name } => {
                self.keys.insert(key, self.calls.len());
                self.calls.push((key, name, String::new()));
            }
            Delta::ToolArgs { key, args } => {
                if let Some(call) = self.keys.get(&key).and_then(|i| self.calls.get_mut(*i)) {
                    call.2.push_str(&args);
                }
            }
            Delta::Stop(stop) => self.stop = Some(stop),
            Delta::Done => {
                let parts: Vec<Value> = self
                    .calls
                    .drain(..)
                    .filter_map(|(_, name, arguments)| {
                        super::answer::write_part(&Part::ToolCall(ToolCall {
                            id: String::new(),
                            name,
                            arguments,
                        }))
                    })
                    .collect();
                let mut candidate = serde_json::Map::new();
                if !parts.is_empty() {
                    candidate.insert(
                        "content".to_owned(),
                        json!({"role": "model", "parts": parts}),
                    );
                }
                candidate.insert(
                    "finishReason".to_owned(),
                    json!(write_stop(self.stop.unwrap_or(Stop::EndTurn))),
                );
                candidate.insert("index".to_owned(), json!(0));
                let usage = self.answer.usage.as_ref().map(write_usage);
                sse(out, None, &self.chunk(Value::Object(candidate), usage));
            }
            Delta::Error(message) => {
                let error =
                    json!({"error": {"code": 500, "message": message, "status": "INTERNAL"}});
                sse(out, None, &error);
            }
        }
    }
}
