//! Responses requests.
//!
//! Dropped when read: `store`, `metadata`, `reasoning`, `text` (output format), `include`,
//! `truncation`, `service_tier`, `user`, `safety_identifier`, `prompt_cache_key`, `background`,
//! reasoning items in `input`, item ids and statuses, a tool's `strict`. Unsupported:
//! `previous_response_id`, `conversation`, `prompt` templates, `item_reference` items, built-in
//! tools (web search, file search, computer use, ...) and their items, file inputs.

use serde_json::{Map, Value, json};

use crate::translate::ir::{Image, Message, Part, Request, Role, ToolCall, ToolResult, push_parts};
use crate::translate::openai::request::{read_named_function, read_tool_mode, write_tool_choice};
use crate::translate::read::{
    Object, array, build, declaration_members, declared_tool, get, index, number, object, opt_bool,
    opt_number, opt_string, opt_u64, path, string,
};
use crate::translate::{RequestOptions, TranslateError};

pub(crate) fn read(body: &Object) -> Result<Request, TranslateError> {
    for stateful in ["previous_response_id", "conversation", "prompt"] {
        if get(body, stateful).is_some() {
            return Err(TranslateError::unsupported(
                stateful,
                "it refers to state stored at OpenAI, which another provider cannot read",
            ));
        }
    }
    let mut request = Request::default();
    if let Some(instructions) = opt_string(get(body, "instructions"), "instructions")? {
        request.system.push(instructions);
    }
    match get(body, "input") {
        None => return Err(TranslateError::MissingField("input")),
        Some(Value::String(text)) => request.messages.push(Message {
            role: Role::User,
            parts: vec![Part::Text(text.clone())],
        }),
        Some(input) => {
            for (i, item) in array(Some(input), "input")?.iter().enumerate() {
                read_item(item, &index("input", i), &mut request)?;
            }
        }
    }
    for (i, tool) in array(get(body, "tools"), "tools")?.iter().enumerate() {
        let at = index("tools", i);
        let tool = object(tool, &at)?;
        let kind = string(get(tool, "type"), &path(&at, "type"))?;
        if kind != "function" {
            return Err(TranslateError::unsupported(
                path(&at, "type"),
                format!("the built-in tool `{kind}` runs only at OpenAI"),
            ));
        }
        request
            .tools
            .push(declared_tool(tool, &at, get(tool, "parameters"))?);
    }
    request.tool_choice = match get(body, "tool_choice") {
        None => None,
        Some(Value::String(mode)) => Some(read_tool_mode(mode)?),
        Some(choice) => Some(read_named_function(choice.get("type"), choice.get("name"))?),
    };
    let sampling = &mut request.sampling;
    sampling.temperature = opt_number(get(body, "temperature"), "temperature")?;
    sampling.top_p = opt_number(get(body, "top_p"), "top_p")?;
    sampling.max_tokens = opt_u64(get(body, "max_output_tokens"), "max_output_tokens")?;
    sampling.parallel_tool_calls =
        opt_bool(get(body, "parallel_tool_calls"), "parallel_tool_calls")?;
    request.stream = opt_bool(get(body, "stream"), "stream")?.unwrap_or(false);
    Ok(request)
}

fn read_item(item: &Value, at: &str, request: &mut Request) -> Result<(), TranslateError> {
    let item = object(item, at)?;
    let kind = opt_string(get(item, "type"), &path(at, "type"))?;
    match kind.as_deref() {
        None | Some("message") => read_message(item, at, request),
        Some("function_call") => {
            let call = ToolCall {
                id: string(get(item, "call_id"), &path(at, "call_id"))?.to_owned(),
                name: string(get(item, "name"), &path(at, "name"))?.to_owned(),
                arguments: opt_string(get(item, "arguments"), &path(at, "arguments"))?
                    .unwrap_or_default(),
            };
            push_parts(
                &mut request.messages,
                Role::Assistant,
                vec![Part::ToolCall(call)],
            );
            Ok(())
        }
        Some("function_call_output") => {
            let output = match get(item, "output") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            let result = ToolResult {
                id: string(get(item, "call_id"), &path(at, "call_id"))?.to_owned(),
                content: output,
                is_error: false,
            };
            push_parts(
                &mut request.messages,
                Role::User,
                vec![Part::ToolResult(result)],
            );
            Ok(())
        }
        Some("reasoning") => Ok(()),
        Some(other) => Err(TranslateError::unsupported(
            path(at, "type"),
            format!("`{other}` items can only be sent to OpenAI"),
        )),
    }
}

fn read_message(item: &Object, at: &str, request: &mut Request) -> Result<(), TranslateError> {
    let role = string(get(item, "role"), &path(at, "role"))?;
    let content_at = path(at, "content");
    let mut parts = Vec::new();
    match get(item, "content") {
        Some(Value::String(text)) => parts.push(Part::Text(text.clone())),
        content => {
            for (i, part) in array(content, &content_at)?.iter().enumerate() {
                let part_at = index(&content_at, i);
                let part = object(part, &part_at)?;
                match string(get(part, "type"), &path(&part_at, "type"))? {
                    "input_text" | "output_text" => parts.push(Part::Text(
                        string(get(part, "text"), &path(&part_at, "text"))?.to_owned(),
                    )),
                    "refusal" => parts.push(Part::Text(
                        string(get(part, "refusal"), &path(&part_at, "refusal"))?.to_owned(),
                    )),
                    "input_image" => match get(part, "image_url") {
                        Some(Value::String(url)) => parts.push(Part::Image(Image::from_url(url))),
                        _ => {
                            return Err(TranslateError::unsupported(
                                path(&part_at, "file_id"),
                                "an uploaded file lives at OpenAI; send the image by URL",
                            ));
                        }
                    },
                    other => {
                        return Err(TranslateError::unsupported(
                            path(&part_at, "type"),
                            format!("`{other}` parts can only be sent to OpenAI"),
                        ));
                    }
                }
            }
        }
    }
    match role {
        "system" | "developer" => {
            request
                .system
                .extend(parts.into_iter().filter_map(|part| match part {
                    Part::Text(text) => Some(text),
                    Part::Image(_) | Part::ToolCall(_) | Part::ToolResult(_) => None,
                }));
        }
        "user" => request.messages.push(Message {
            role: Role::User,
            parts,
        }),
        "assistant" => push_parts(&mut request.messages, Role::Assistant, parts),
        other => {
            return Err(TranslateError::invalid(
                path(at, "role"),
                format!("unknown role `{other}`"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn write(
    request: &Request,
    opts: &RequestOptions,
) -> Result<Map<String, Value>, TranslateError> {
    let mut input = Vec::new();
    for message in &request.messages {
        let mut content = Vec::new();
        let (role, text_type) = match message.role {
            Role::User => ("user", "input_text"),
            Role::Assistant => ("assistant", "output_text"),
        };
        let flush = |content: &mut Vec<Value>, input: &mut Vec<Value>| {
            if !content.is_empty() {
                input.push(json!({
                    "type": "message",
                    "role": role,
                    "content": std::mem::take(content),
                }));
            }
        };
        for part in &message.parts {
            match part {
                Part::Text(text) => content.push(json!({"type": text_type, "text": text})),
                Part::Image(image) => {
                    content.push(json!({"type": "input_image", "image_url": image.to_url()}));
                }
                Part::ToolCall(call) => {
                    flush(&mut content, &mut input);
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }));
                }
                Part::ToolResult(result) => {
                    flush(&mut content, &mut input);
                    input.push(json!({
                        "type": "function_call_output",
                        "call_id": result.id,
                        "output": result.content,
                    }));
                }
            }
        }
        flush(&mut content, &mut input);
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            let kind = ("type", Some(Value::from("function")));
            build(std::iter::once(kind).chain(declaration_members(tool, "parameters")))
        })
        .collect();
    let tool_choice = request
        .tool_choice
        .as_ref()
        .map(|choice| write_tool_choice(choice, |name| json!({"type": "function", "name": name})));
    let sampling = &request.sampling;
    let instructions =
        (!request.system.is_empty()).then(|| Value::from(request.system.join("\n\n")));
    Ok(
        match build([
            ("model", Some(Value::from(opts.model))),
            ("instructions", instructions),
            ("input", Some(Value::Array(input))),
            ("tools", (!tools.is_empty()).then_some(Value::Array(tools))),
            ("tool_choice", tool_choice),
            (
                "parallel_tool_calls",
                sampling.parallel_tool_calls.map(Value::from),
            ),
            ("temperature", sampling.temperature.as_ref().map(number)),
            ("top_p", sampling.top_p.as_ref().map(number)),
            ("max_output_tokens", sampling.max_tokens.map(Value::from)),
            ("stream", request.stream.then_some(Value::Bool(true))),
        ]) {
            Value::Object(body) => body,
            _ => Map::new(),
        },
    )
}
