//! Chat Completions requests.
//!
//! Dropped when read (no equivalent elsewhere): `n` of 1, `seed`, `user`, `logprobs`,
//! `top_logprobs`, `logit_bias`, `presence_penalty`, `frequency_penalty`, `response_format`,
//! `metadata`, `store`, `service_tier`, `reasoning_effort`, `prediction`, `audio`, `modalities`,
//! an image's `detail`, a tool's `strict`, a message's `name`. Unsupported: `n` above 1, audio and
//! file parts, legacy `function` messages, non-function tools. System and developer messages are
//! gathered into the system prompt, wherever they stood.
//!
//! Responses spells `tool_choice` as Chat Completions does but for where a function's name
//! sits, so it reads and writes it through the helpers here.

use serde_json::{Map, Value, json};

use crate::translate::ir::{
    Image, Message, Part, Request, Role, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::translate::read::{
    Object, array, build, declaration_members, declared_tool, get, index, number, object, opt_bool,
    opt_number, opt_string, opt_u64, path, required_object, stop_list, string,
};
use crate::translate::{RequestOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Request, TranslateError> {
    let mut request = Request::default();
    let messages = get(body, "messages").ok_or(TranslateError::MissingField("messages"))?;
    for (i, message) in array(Some(messages), "messages")?.iter().enumerate() {
        read_message(message, &index("messages", i), &mut request)?;
    }
    for (i, tool) in array(get(body, "tools"), "tools")?.iter().enumerate() {
        request.tools.push(read_tool(tool, &index("tools", i))?);
    }
    request.tool_choice = read_tool_choice(get(body, "tool_choice"))?;
    if opt_u64(get(body, "n"), "n")?.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            "only one choice can be asked of another provider",
        ));
    }
    let sampling = &mut request.sampling;
    sampling.temperature = opt_number(get(body, "temperature"), "temperature")?;
    sampling.top_p = opt_number(get(body, "top_p"), "top_p")?;
    sampling.stop = stop_list(get(body, "stop"), "stop")?;
    sampling.max_tokens =
        match opt_u64(get(body, "max_completion_tokens"), "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_u64(get(body, "max_tokens"), "max_tokens")?,
        };
    sampling.parallel_tool_calls =
        opt_bool(get(body, "parallel_tool_calls"), "parallel_tool_calls")?;
    request.stream = opt_bool(get(body, "stream"), "stream")?.unwrap_or(false);
    Ok(request)
}

fn read_message(message: &Value, at: &str, request: &mut Request) -> Result<(), TranslateError> {
    let message = object(message, at)?;
    let role = string(get(message, "role"), &path(at, "role"))?;
    let content = get(message, "content");
    let content_at = path(at, "content");
    match role {
        "system" | "developer" => request.system.extend(texts(content, &content_at)?),
        "user" => {
            let parts = user_parts(content, &content_at)?;
            request.messages.push(Message {
                role: Role::User,
                parts,
            });
        }
        "assistant" => {
            let mut parts: Vec<Part> = texts(content, &content_at)?
                .into_iter()
                .map(Part::Text)
                .collect();
            if let Some(refusal) = opt_string(get(message, "refusal"), &path(at, "refusal"))? {
                parts.push(Part::Text(refusal));
            }
            let calls_at = path(at, "tool_calls");
            for (i, call) in array(get(message, "tool_calls"), &calls_at)?
                .iter()
                .enumerate()
            {
                parts.push(Part::ToolCall(read_call(call, &index(&calls_at, i))?));
            }
            request.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" => {
            let id = string(get(message, "tool_call_id"), &path(at, "tool_call_id"))?;
            let result = ToolResult {
                id: id.to_owned(),
                content: texts(content, &content_at)?.join("\n"),
                is_error: false,
            };
            request.messages.push(Message {
                role: Role::User,
                parts: vec![Part::ToolResult(result)],
            });
        }
        "function" => {
            return Err(TranslateError::unsupported(
                path(at, "role"),
                "legacy `function` messages have no id to pair them with a call; use `tool`",
            ));
        }
        other => {
            return Err(TranslateError::invalid(
                path(at, "role"),
                format!("unknown role `{other}`"),
            ));
        }
    }
    Ok(())
}

/// Text of a string or an array of `text` (or `refusal`) parts.
fn texts(content: Option<&Value>, at: &str) -> Result<Vec<String>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let part_at = index(at, i);
                let part = object(part, &part_at)?;
                match string(get(part, "type"), &path(&part_at, "type"))? {
                    "text" => {
                        out.push(string(get(part, "text"), &path(&part_at, "text"))?.to_owned())
                    }
                    "refusal" => out
                        .push(string(get(part, "refusal"), &path(&part_at, "refusal"))?.to_owned()),
                    other => {
                        return Err(TranslateError::unsupported(
                            path(&part_at, "type"),
                            format!("a `{other}` part has no equivalent here"),
                        ));
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(TranslateError::invalid(at, "expected a string or an array")),
    }
}

fn user_parts(content: Option<&Value>, at: &str) -> Result<Vec<Part>, TranslateError> {
    let Some(Value::Array(parts)) = content else {
        return Ok(texts(content, at)?.into_iter().map(Part::Text).collect());
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let part_at = index(at, i);
        let part = object(part, &part_at)?;
        match string(get(part, "type"), &path(&part_at, "type"))? {
            "text" => out.push(Part::Text(
                string(get(part, "text"), &path(&part_at, "text"))?.to_owned(),
            )),
            "image_url" => {
                let image_at = path(&part_at, "image_url");
                let url = match get(part, "image_url") {
                    Some(Value::String(url)) => url.as_str(),
                    Some(image) => string(image.get("url"), &path(&image_at, "url"))?,
                    None => return Err(TranslateError::invalid(image_at, "is required")),
                };
                out.push(Part::Image(Image::from_url(url)));
            }
            other => {
                return Err(TranslateError::unsupported(
                    path(&part_at, "type"),
                    format!("`{other}` parts can only be sent to OpenAI"),
                ));
            }
        }
    }
    Ok(out)
}

fn read_call(call: &Value, at: &str) -> Result<ToolCall, TranslateError> {
    let call = object(call, at)?;
    if let Some(kind) = opt_string(get(call, "type"), &path(at, "type"))? {
        if kind != "function" {
            return Err(TranslateError::unsupported(
                path(at, "type"),
                format!("`{kind}` tool calls can only be sent to OpenAI"),
            ));
        }
    }
    let (function, function_at) = required_object(call, "function", at)?;
    Ok(ToolCall {
        id: string(get(call, "id"), &path(at, "id"))?.to_owned(),
        name: string(get(function, "name"), &path(&function_at, "name"))?.to_owned(),
        arguments: opt_string(get(function, "arguments"), &path(&function_at, "arguments"))?
            .unwrap_or_default(),
    })
}

fn read_tool(tool: &Value, at: &str) -> Result<Tool, TranslateError> {
    let tool = object(tool, at)?;
    let kind = string(get(tool, "type"), &path(at, "type"))?;
    if kind != "function" {
        return Err(TranslateError::unsupported(
            path(at, "type"),
            format!("`{kind}` tools can only be sent to OpenAI"),
        ));
    }
    let (function, function_at) = required_object(tool, "function", at)?;
    declared_tool(function, &function_at, get(function, "parameters"))
}

fn read_tool_choice(choice: Option<&Value>) -> Result<Option<ToolChoice>, TranslateError> {
    match choice {
        None => Ok(None),
        Some(Value::String(mode)) => read_tool_mode(mode).map(Some),
        Some(Value::Object(choice)) => {
            let name = choice.get("function").and_then(|f| f.get("name"));
            read_named_function(choice.get("type"), name).map(Some)
        }
        Some(_) => Err(TranslateError::invalid(
            "tool_choice",
            "expected a string or an object",
        )),
    }
}

/// A `tool_choice` mode, as both OpenAI APIs (Chat Completions and Responses) name them.
pub(crate) fn read_tool_mode(mode: &str) -> Result<ToolChoice, TranslateError> {
    match mode {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Any),
        other => Err(TranslateError::invalid(
            "tool_choice",
            format!("unknown mode `{other}`"),
        )),
    }
}

/// A `tool_choice` object of either OpenAI API: only a named function translates. The APIs
/// keep the name in different places, so the caller finds it.
pub(crate) fn read_named_function(
    kind: Option<&Value>,
    name: Option<&Value>,
) -> Result<ToolChoice, TranslateError> {
    match (kind.and_then(Value::as_str), name.and_then(Value::as_str)) {
        (Some("function"), Some(name)) => Ok(ToolChoice::Tool(name.to_owned())),
        _ => Err(TranslateError::unsupported(
            "tool_choice",
            "only `auto`, `none`, `required` and a named function translate",
        )),
    }
}

/// `tool_choice` as both OpenAI APIs write it; `named` spells a named function, which Chat
/// Completions nests under `function` and Responses does not.
pub(crate) fn write_tool_choice(choice: &ToolChoice, named: fn(&str) -> Value) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Any => json!("required"),
        ToolChoice::Tool(name) => named(name),
    }
}

pub(crate) fn write(
    request: &Request,
    opts: &RequestOptions,
) -> Result<Map<String, Value>, TranslateError> {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system.join("\n\n")}));
    }
    for message in &request.messages {
        match message.role {
            Role::User => write_user(&message.parts, &mut messages),
            Role::Assistant => messages.push(write_assistant(&message.parts)),
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({"type": "function", "function": build(declaration_members(tool, "parameters"))})
        })
        .collect();
    let tool_choice = request.tool_choice.as_ref().map(|choice| {
        write_tool_choice(
            choice,
            |name| json!({"type": "function", "function": {"name": name}}),
        )
    });
    let sampling = &request.sampling;
    let stop = match sampling.stop.as_slice() {
        [] => None,
        stops => Some(json!(stops)),
    };
    let Value::Object(mut body) = build([
        ("model", Some(Value::from(opts.model))),
        ("messages", Some(Value::Array(messages))),
        ("tools", (!tools.is_empty()).then_some(Value::Array(tools))),
        ("tool_choice", tool_choice),
        (
            "parallel_tool_calls",
            sampling.parallel_tool_calls.map(Value::from),
        ),
        ("temperature", sampling.temperature.as_ref().map(number)),
        ("top_p", sampling.top_p.as_ref().map(number)),
        ("stop", stop),
        (
            "max_completion_tokens",
            sampling.max_tokens.map(Value::from),
        ),
    ]) else {
        return Ok(Map::new());
    };
    if request.stream {
        body.insert("stream".to_owned(), Value::Bool(true));
        body.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    Ok(body)
}

/// A user turn: its tool results become `tool` messages, the rest a `user` message, in order.
fn write_user(parts: &[Part], messages: &mut Vec<Value>) {
    let mut pending: Vec<&Part> = Vec::new();
    for part in parts {
        if let Part::ToolResult(result) = part {
            flush_user(&mut pending, messages);
            messages.push(json!({
                "role": "tool",
                "tool_call_id": result.id,
                "content": result.content,
            }));
        } else {
            pending.push(part);
        }
    }
    flush_user(&mut pending, messages);
}

fn flush_user(pending: &mut Vec<&Part>, messages: &mut Vec<Value>) {
    if pending.is_empty() {
        return;
    }
    let content = match pending.as_slice() {
        [Part::Text(text)] => Value::from(text.as_str()),
        parts => Value::Array(
            parts
                .iter()
                .filter_map(|part| match part {
                    Part::Text(text) => Some(json!({"type": "text", "text": text})),
                    Part::Image(image) => {
                        Some(json!({"type": "image_url", "image_url": {"url": image.to_url()}}))
                    }
                    Part::ToolCall(_) | Part::ToolResult(_) => None,
                })
                .collect(),
        ),
    };
    messages.push(json!({"role": "user", "content": content}));
    pending.clear();
}

/// An assistant turn: its texts joined, its tool calls; images cannot be said here.
pub(crate) fn write_assistant(parts: &[Part]) -> Value {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            Part::Image(_) | Part::ToolCall(_) | Part::ToolResult(_) => None,
        })
        .collect();
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|part| match part {
            Part::ToolCall(call) => Some(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            })),
            Part::Text(_) | Part::Image(_) | Part::ToolResult(_) => None,
        })
        .collect();
    let content = if texts.is_empty() {
        Value::Null
    } else {
        Value::from(texts.join("\n"))
    };
    build([
        ("role", Some(Value::from("assistant"))),
        ("content", Some(content)),
        (
            "tool_calls",
            (!calls.is_empty()).then_some(Value::Array(calls)),
        ),
    ])
}
