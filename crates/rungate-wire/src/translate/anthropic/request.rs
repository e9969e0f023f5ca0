//! Messages requests.
//!
//! Dropped when read: `metadata`, `thinking` and thinking blocks in the history,
//! `cache_control` marks, `service_tier`, `container`, `mcp_servers`, a tool result's images.
//! Unsupported: server tools (`web_search_*`, `bash_*`, ...) and their blocks, `document`
//! blocks, file-id image sources. `tool_choice.disable_parallel_tool_use` becomes
//! `parallel_tool_calls: false`.

use serde_json::{Map, Value, json};

use crate::translate::ir::{
    Image, Message, Part, Request, Role, Tool, ToolCall, ToolChoice, ToolResult, merged,
};
use crate::translate::read::{
    Object, arguments_text, array, build, declaration_members, declared_tool, get, index, number,
    object, opt_bool, opt_number, opt_string, opt_u64, path, required_object, stop_list, string,
};
use crate::translate::{RequestOptions, TranslateError, ir};

pub(crate) fn read(body: &Object) -> Result<Request, TranslateError> {
    let mut request = Request {
        system: read_system(get(body, "system"))?,
        ..Request::default()
    };
    let messages = get(body, "messages").ok_or(TranslateError::MissingField("messages"))?;
    for (i, message) in array(Some(messages), "messages")?.iter().enumerate() {
        let at = index("messages", i);
        let message = object(message, &at)?;
        let role = match string(get(message, "role"), &path(&at, "role"))? {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(TranslateError::invalid(
                    path(&at, "role"),
                    format!("unknown role `{other}`"),
                ));
            }
        };
        let parts = read_content(get(message, "content"), &path(&at, "content"))?;
        request.messages.push(Message { role, parts });
    }
    for (i, tool) in array(get(body, "tools"), "tools")?.iter().enumerate() {
        request.tools.push(read_tool(tool, &index("tools", i))?);
    }
    if let Some(choice) = get(body, "tool_choice") {
        let choice = object(choice, "tool_choice")?;
        request.tool_choice = Some(match string(get(choice, "type"), "tool_choice.type")? {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Any,
            "none" => ToolChoice::None,
            "tool" => ToolChoice::Tool(string(get(choice, "name"), "tool_choice.name")?.to_owned()),
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice.type",
                    format!("unknown type `{other}`"),
                ));
            }
        });
        let disable = opt_bool(
            get(choice, "disable_parallel_tool_use"),
            "tool_choice.disable_parallel_tool_use",
        )?;
        request.sampling.parallel_tool_calls = disable.map(|disable| !disable);
    }
    let sampling = &mut request.sampling;
    sampling.max_tokens = opt_u64(get(body, "max_tokens"), "max_tokens")?;
    sampling.temperature = opt_number(get(body, "temperature"), "temperature")?;
    sampling.top_p = opt_number(get(body, "top_p"), "top_p")?;
    sampling.top_k = opt_number(get(body, "top_k"), "top_k")?;
    sampling.stop = stop_list(get(body, "stop_sequences"), "stop_sequences")?;
    request.stream = opt_bool(get(body, "stream"), "stream")?.unwrap_or(false);
    Ok(request)
}

fn read_system(system: Option<&Value>) -> Result<Vec<String>, TranslateError> {
    match system {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let at = index("system", i);
                string(block.get("text"), &path(&at, "text")).map(str::to_owned)
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            "system",
            "expected a string or an array",
        )),
    }
}

fn read_content(content: Option<&Value>, at: &str) -> Result<Vec<Part>, TranslateError> {
    let blocks = match content {
        Some(Value::String(text)) => return Ok(vec![Part::Text(text.clone())]),
        other => array(other, at)?,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let block_at = index(at, i);
        let block = object(block, &block_at)?;
        match string(get(block, "type"), &path(&block_at, "type"))? {
            "text" => parts.push(Part::Text(
                string(get(block, "text"), &path(&block_at, "text"))?.to_owned(),
            )),
            "image" => parts.push(Part::Image(read_image(block, &block_at)?)),
            "tool_use" => parts.push(Part::ToolCall(ToolCall {
                id: string(get(block, "id"), &path(&block_at, "id"))?.to_owned(),
                name: string(get(block, "name"), &path(&block_at, "name"))?.to_owned(),
                arguments: arguments_text(get(block, "input")),
            })),
            "tool_result" => parts.push(Part::ToolResult(ToolResult {
                id: string(get(block, "tool_use_id"), &path(&block_at, "tool_use_id"))?.to_owned(),
                content: result_text(get(block, "content"), &path(&block_at, "content"))?,
                is_error: opt_bool(get(block, "is_error"), &path(&block_at, "is_error"))?
                    .unwrap_or(false),
            })),
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(TranslateError::unsupported(
                    path(&block_at, "type"),
                    format!("`{other}` blocks can only be sent to Anthropic"),
                ));
            }
        }
    }
    Ok(parts)
}

fn read_image(block: &Object, at: &str) -> Result<Image, TranslateError> {
    let (source, source_at) = required_object(block, "source", at)?;
    match string(get(source, "type"), &path(&source_at, "type"))? {
        "base64" => Ok(Image::Base64 {
            media_type: string(get(source, "media_type"), &path(&source_at, "media_type"))?
                .to_owned(),
            data: string(get(source, "data"), &path(&source_at, "data"))?.to_owned(),
        }),
        "url" => Ok(Image::Url(
            string(get(source, "url"), &path(&source_at, "url"))?.to_owned(),
        )),
        other => Err(TranslateError::unsupported(
            path(&source_at, "type"),
            format!("`{other}` image sources can only be sent to Anthropic"),
        )),
    }
}

/// A tool result's text; its image blocks are dropped (the other dialects take text).
fn result_text(content: Option<&Value>, at: &str) -> Result<String, TranslateError> {
    match content {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(blocks)) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            Ok(texts.join("\n"))
        }
        Some(_) => Err(TranslateError::invalid(at, "expected a string or an array")),
    }
}

fn read_tool(tool: &Value, at: &str) -> Result<Tool, TranslateError> {
    let tool = object(tool, at)?;
    if let Some(kind) = opt_string(get(tool, "type"), &path(at, "type"))? {
        if kind != "custom" {
            return Err(TranslateError::unsupported(
                path(at, "type"),
                format!("the server tool `{kind}` runs only at Anthropic"),
            ));
        }
    }
    declared_tool(tool, at, get(tool, "input_schema"))
}

pub(crate) fn write(
    request: &Request,
    opts: &RequestOptions,
) -> Result<Map<String, Value>, TranslateError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, message) in merged(&request.messages).iter().enumerate() {
        let role = match message.role {
            ir::Role::User => "user",
            ir::Role::Assistant => "assistant",
        };
        messages.push(json!({
            "role": role,
            "content": write_content(&message.parts, &index("messages", i))?,
        }));
    }
    let system = match request.system.as_slice() {
        [] => None,
        [one] => Some(Value::from(one.as_str())),
        many => Some(Value::Array(
            many.iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect(),
        )),
    };
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| build(declaration_members(tool, "input_schema")))
        .collect();
    let sampling = &request.sampling;
    let no_parallel = sampling.parallel_tool_calls == Some(false);
    let tool_choice = match (&request.tool_choice, no_parallel) {
        (None, false) => None,
        (None, true) => Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
        (Some(choice), _) => {
            let mut value = match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Any => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            };
            if no_parallel && *choice != ToolChoice::None {
                if let Some(object) = value.as_object_mut() {
                    object.insert("disable_parallel_tool_use".to_owned(), Value::Bool(true));
                }
            }
            Some(value)
        }
    };
    let stop = (!sampling.stop.is_empty()).then(|| json!(sampling.stop));
    let body = build([
        ("model", Some(Value::from(opts.model))),
        (
            "max_tokens",
            Some(Value::from(
                sampling.max_tokens.unwrap_or(opts.default_max_tokens),
            )),
        ),
        ("system", system),
        ("messages", Some(Value::Array(messages))),
        ("tools", (!tools.is_empty()).then_some(Value::Array(tools))),
        ("tool_choice", tool_choice),
        ("temperature", sampling.temperature.as_ref().map(number)),
        ("top_p", sampling.top_p.as_ref().map(number)),
        ("top_k", sampling.top_k.as_ref().map(number)),
        ("stop_sequences", stop),
        ("stream", request.stream.then_some(Value::Bool(true))),
    ]);
    Ok(match body {
        Value::Object(body) => body,
        _ => Map::new(),
    })
}

/// A turn's blocks; a single text is written as a plain string.
fn write_content(parts: &[Part], at: &str) -> Result<Value, TranslateError> {
    if let [Part::Text(text)] = parts {
        return Ok(Value::from(text.as_str()));
    }
    let mut blocks = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        blocks.push(match part {
            Part::Text(text) => json!({"type": "text", "text": text}),
            Part::Image(Image::Url(url)) => {
                json!({"type": "image", "source": {"type": "url", "url": url}})
            }
            Part::Image(Image::Base64 { media_type, data }) => json!({
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }),
            Part::ToolCall(call) => {
                let input = ir::arguments_object(&call.arguments).ok_or_else(|| {
                    TranslateError::invalid(
                        index(at, i),
                        "tool call arguments are not a JSON object",
                    )
                })?;
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
            }
            Part::ToolResult(result) => build([
                ("type", Some(Value::from("tool_result"))),
                ("tool_use_id", Some(Value::from(result.id.as_str()))),
                ("content", Some(Value::from(result.content.as_str()))),
                ("is_error", result.is_error.then_some(Value::Bool(true))),
            ]),
        });
    }
    Ok(Value::Array(blocks))
}
