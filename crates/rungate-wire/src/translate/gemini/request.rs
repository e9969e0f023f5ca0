//! `generateContent` requests. The model and streaming live in the URL: the model is never
//! written; a Gemini client's wish to stream is read from a top-level `"stream": true`, which
//! the gateway adds to the body when the URL is `streamGenerateContent`.
//!
//! Dropped when read: `safetySettings`, `cachedContent`, `generationConfig` members other than
//! `temperature`, `topP`, `topK`, `maxOutputTokens`, `stopSequences` (e.g. `responseMimeType`,
//! `thinkingConfig`, `seed`), `thought` parts and `thoughtSignature`s. Unsupported:
//! `candidateCount` above 1, `googleSearch`/`codeExecution` tools and their parts.

use serde_json::{Map, Value, json};

use crate::translate::TranslateError;
use crate::translate::ir::{
    self, Image, Message, Part, Request, Role, ToolCall, ToolChoice, ToolResult, merged,
};
use crate::translate::read::{
    Object, arguments_text, array, build, declaration_members, declared_tool, get, get_camel,
    index, number, object, opt_bool, opt_number, opt_string, opt_u64, path, stop_list, string,
};

pub(crate) fn read(body: &Object) -> Result<Request, TranslateError> {
    let root = Value::Object(body.clone());
    let mut request = Request::default();
    if let Some(system) = get_camel(&root, "systemInstruction") {
        for (i, part) in array(get_camel(system, "parts"), "systemInstruction.parts")?
            .iter()
            .enumerate()
        {
            let at = index("systemInstruction.parts", i);
            request
                .system
                .push(string(part.get("text"), &path(&at, "text"))?.to_owned());
        }
    }
    let contents = get(body, "contents").ok_or(TranslateError::MissingField("contents"))?;
    let mut calls = Calls::default();
    for (i, content) in array(Some(contents), "contents")?.iter().enumerate() {
        let at = index("contents", i);
        let role = match opt_string(content.get("role"), &path(&at, "role"))?.as_deref() {
            None | Some("user") | Some("function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(TranslateError::invalid(
                    path(&at, "role"),
                    format!("unknown role `{other}`"),
                ));
            }
        };
        let parts_at = path(&at, "parts");
        let mut parts = Vec::new();
        for (j, part) in array(get_camel(content, "parts"), &parts_at)?
            .iter()
            .enumerate()
        {
            if let Some(part) = read_part(part, &index(&parts_at, j), &mut calls)? {
                parts.push(part);
            }
        }
        request.messages.push(Message { role, parts });
    }
    for (i, tool) in array(get(body, "tools"), "tools")?.iter().enumerate() {
        let at = index("tools", i);
        let tool = object(tool, &at)?;
        let tool_value = Value::Object(tool.clone());
        let Some(declarations) = get_camel(&tool_value, "functionDeclarations") else {
            let kind = tool.keys().next().map_or("empty", String::as_str);
            return Err(TranslateError::unsupported(
                at,
                format!("the `{kind}` tool runs only at Google"),
            ));
        };
        let decl_at = path(&at, "functionDeclarations");
        for (j, declaration) in array(Some(declarations), &decl_at)?.iter().enumerate() {
            let at = index(&decl_at, j);
            let declaration = object(declaration, &at)?;
            let value = Value::Object(declaration.clone());
            let schema = get_camel(&value, "parametersJsonSchema")
                .or_else(|| get(declaration, "parameters"));
            request.tools.push(declared_tool(declaration, &at, schema)?);
        }
    }
    if let Some(config) =
        get_camel(&root, "toolConfig").and_then(|c| get_camel(c, "functionCallingConfig"))
    {
        let names: Vec<&str> = get_camel(config, "allowedFunctionNames")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        request.tool_choice = match config.get("mode").and_then(Value::as_str) {
            Some("ANY") => Some(match names.as_slice() {
                [one] => ToolChoice::Tool((*one).to_owned()),
                _ => ToolChoice::Any,
            }),
            Some("NONE") => Some(ToolChoice::None),
            Some("AUTO") => Some(ToolChoice::Auto),
            _ => None,
        };
    }
    if let Some(config) = get_camel(&root, "generationConfig") {
        const AT: &str = "generationConfig";
        if opt_u64(
            get_camel(config, "candidateCount"),
            "generationConfig.candidateCount",
        )?
        .is_some_and(|n| n > 1)
        {
            return Err(TranslateError::unsupported(
                "generationConfig.candidateCount",
                "only one candidate can be asked of another provider",
            ));
        }
        let sampling = &mut request.sampling;
        sampling.temperature = opt_number(config.get("temperature"), &path(AT, "temperature"))?;
        sampling.top_p = opt_number(get_camel(config, "topP"), &path(AT, "topP"))?;
        sampling.top_k = opt_number(get_camel(config, "topK"), &path(AT, "topK"))?;
        sampling.max_tokens = opt_u64(
            get_camel(config, "maxOutputTokens"),
            &path(AT, "maxOutputTokens"),
        )?;
        sampling.stop = stop_list(
            get_camel(config, "stopSequences"),
            &path(AT, "stopSequences"),
        )?;
    }
    request.stream = opt_bool(get(body, "stream"), "stream")?.unwrap_or(false);
    Ok(request)
}

/// Ids synthesized for a request's calls, and the calls not answered yet (by name).
#[derive(Default)]
struct Calls {
    next: usize,
    open: Vec<(String, String)>,
}

fn read_part(part: &Value, at: &str, calls: &mut Calls) -> Result<Option<Part>, TranslateError> {
    object(part, at)?;
    if part.get("thought").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    if let Some(text) = part.get("text") {
        return Ok(Some(Part::Text(
            string(Some(text), &path(at, "text"))?.to_owned(),
        )));
    }
    if let Some(data) = get_camel(part, "inlineData") {
        let at = path(at, "inlineData");
        return Ok(Some(Part::Image(Image::Base64 {
            media_type: string(get_camel(data, "mimeType"), &path(&at, "mimeType"))?.to_owned(),
            data: string(data.get("data"), &path(&at, "data"))?.to_owned(),
        })));
    }
    if let Some(file) = get_camel(part, "fileData") {
        let at = path(at, "fileData");
        return Ok(Some(Part::Image(Image::Url(
            string(get_camel(file, "fileUri"), &path(&at, "fileUri"))?.to_owned(),
        ))));
    }
    if let Some(call) = get_camel(part, "functionCall") {
        let at = path(at, "functionCall");
        let name = string(call.get("name"), &path(&at, "name"))?.to_owned();
        let id = match call.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let id = super::call_id(None, calls.next);
                calls.next += 1;
                id
            }
        };
        calls.open.push((id.clone(), name.clone()));
        return Ok(Some(Part::ToolCall(ToolCall {
            id,
            name,
            arguments: arguments_text(call.get("args")),
        })));
    }
    if let Some(response) = get_camel(part, "functionResponse") {
        let at = path(at, "functionResponse");
        let name = string(response.get("name"), &path(&at, "name"))?;
        let id = match response.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => match calls.open.iter().position(|(_, n)| n == name) {
                Some(found) => calls.open.remove(found).0,
                None => {
                    return Err(TranslateError::invalid(
                        path(&at, "name"),
                        format!("no earlier functionCall named `{name}` to answer"),
                    ));
                }
            },
        };
        return Ok(Some(Part::ToolResult(ToolResult {
            id,
            content: result_text(response.get("response")),
            is_error: false,
        })));
    }
    let kind = part
        .as_object()
        .and_then(|p| p.keys().next())
        .map_or("empty", String::as_str);
    Err(TranslateError::unsupported(
        at,
        format!("`{kind}` parts have no equivalent elsewhere"),
    ))
}

/// `{"content": "text"}` (what the writer produces) reads back as the text; any other response
/// object as its JSON.
fn result_text(response: Option<&Value>) -> String {
    match response {
        None | Some(Value::Null) => String::new(),
        Some(value) => match value.as_object() {
            Some(object) if object.len() == 1 => match object.get("content") {
                Some(Value::String(text)) => text.clone(),
                _ => value.to_string(),
            },
            _ => value.to_string(),
        },
    }
}

pub(crate) fn write(request: &Request) -> Result<Map<String, Value>, TranslateError> {
    let names: Vec<(&str, &str)> = request
        .messages
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter_map(|part| match part {
            Part::ToolCall(call) => Some((call.id.as_str(), call.name.as_str())),
            Part::Text(_) | Part::Image(_) | Part::ToolResult(_) => None,
        })
        .collect();
    let mut contents = Vec::new();
    for (i, message) in merged(&request.messages).iter().enumerate() {
        let at = index("messages", i);
        let mut parts = Vec::with_capacity(message.parts.len());
        for (j, part) in message.parts.iter().enumerate() {
            parts.push(write_part(part, &index(&at, j), &names)?);
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        contents.push(json!({"role": role, "parts": parts}));
    }
    let system = (!request.system.is_empty()).then(|| {
        let parts: Vec<Value> = request.system.iter().map(|t| json!({"text": t})).collect();
        json!({"parts": parts})
    });
    let tools = (!request.tools.is_empty()).then(|| {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| build(declaration_members(tool, "parametersJsonSchema")))
            .collect();
        json!([{"functionDeclarations": declarations}])
    });
    let tool_config = request.tool_choice.as_ref().map(|choice| {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Any => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        json!({"functionCallingConfig": config})
    });
    let sampling = &request.sampling;
    let generation = build([
        ("temperature", sampling.temperature.as_ref().map(number)),
        ("topP", sampling.top_p.as_ref().map(number)),
        ("topK", sampling.top_k.as_ref().map(number)),
        ("maxOutputTokens", sampling.max_tokens.map(Value::from)),
        (
            "stopSequences",
            (!sampling.stop.is_empty()).then(|| json!(sampling.stop)),
        ),
    ]);
    let generation = generation
        .as_object()
        .is_some_and(|g| !g.is_empty())
        .then_some(generation);
    Ok(
        match build([
            ("systemInstruction", system),
            ("contents", Some(Value::Array(contents))),
            ("tools", tools),
            ("toolConfig", tool_config),
            ("generationConfig", generation),
        ]) {
            Value::Object(body) => body,
            _ => Map::new(),
        },
    )
}

fn write_part(part: &Part, at: &str, names: &[(&str, &str)]) -> Result<Value, TranslateError> {
    Ok(match part {
        Part::Text(text) => json!({"text": text}),
        Part::Image(Image::Base64 { media_type, data }) => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Part::Image(Image::Url(url)) => json!({"fileData": {"fileUri": url}}),
        Part::ToolCall(call) => {
            let args = ir::arguments_object(&call.arguments).ok_or_else(|| {
                TranslateError::invalid(at, "tool call arguments are not a JSON object")
            })?;
            json!({"functionCall": {"name": call.name, "args": args}})
        }
        Part::ToolResult(result) => {
            let Some((_, name)) = names.iter().rev().find(|(id, _)| *id == result.id) else {
                return Err(TranslateError::unsupported(
                    at,
                    format!(
                        "Gemini needs the name of the call `{}` answers, and no earlier tool call has that id",
                        result.id
                    ),
                ));
            };
            json!({"functionResponse": {"name": name, "response": {"content": result.content}}})
        }
    })
}
