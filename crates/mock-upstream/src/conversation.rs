//! What the mock reads from a request, whichever provider's layout it arrives in.
//!
//! Four request layouts (Chat Completions and Messages share one reader; Responses and Gemini have
//! their own) are read into one neutral [`Conversation`]: the turns with their text, the system text,
//! the first declared tool, the `"mock"` script. Everything the mock decides ([`crate::plan`]) is
//! decided on that value, so the four dialects reply, count tokens and trigger tool calls alike.
//!
//! The readers are lenient: only the fields that decide the answer are parsed and anything else is
//! ignored, as a real provider accepts fields this mock has never heard of. The `"mock"` object is
//! kept as raw JSON here; [`crate::plan`] reads it strictly once it is merged with the server default.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::plan::BadRequest;

/// One request, in no provider's layout.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// OpenAI Chat's `stream_options.include_usage`: whether a final usage chunk is sent.
    pub(crate) include_usage: bool,
    pub(crate) turns: Vec<Turn>,
    /// System prompt or instructions: counted as input, never echoed.
    pub(crate) system: Vec<String>,
    /// The first declared tool that has a name: the one "use tool" calls.
    pub(crate) first_tool: Option<String>,
    /// The body's `"mock"` object, not yet checked.
    pub(crate) script: Option<Map<String, Value>>,
    /// Request members the dialect repeats in its answer (the Responses API echoes its settings).
    pub(crate) echo: Vec<(&'static str, Value)>,
}

/// One message (or input item) of the conversation.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    /// Written by the user, rather than by the model, a tool or the system.
    pub(crate) from_user: bool,
    pub(crate) texts: Vec<String>,
}

impl Turn {
    /// The turn's text parts joined with single spaces.
    pub(crate) fn joined(&self) -> String {
        self.texts.join(" ")
    }
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, BadRequest> {
    serde_json::from_slice(body)
        .map_err(|error| BadRequest(format!("could not parse the JSON body: {error}")))
}

/// A message's content: a string, or parts of which only those with `text` count.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn into_texts(self) -> Vec<String> {
        match self {
            Content::Text(text) => vec![text],
            Content::Parts(parts) => parts.into_iter().filter_map(|part| part.text).collect(),
            Content::Other(_) => Vec::new(),
        }
    }
}

fn texts(content: Option<Content>) -> Vec<String> {
    content.map(Content::into_texts).unwrap_or_default()
}

// ---- OpenAI Chat Completions and Anthropic Messages -------------------------------------------

#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Vec<ChatTool>>,
    #[serde(default)]
    mock: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A declared tool: Anthropic names it at the top level, OpenAI Chat under `function`.
#[derive(Deserialize)]
struct ChatTool {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    function: Option<ChatFunction>,
}

#[derive(Deserialize)]
struct ChatFunction {
    #[serde(default)]
    name: Option<String>,
}

impl ChatTool {
    fn into_name(self) -> Option<String> {
        self.name.or_else(|| self.function.and_then(|f| f.name))
    }
}

/// `POST /v1/chat/completions` and `POST /v1/messages`: the two layouts differ only in where the
/// system prompt and a tool's name live, so one reader takes both.
pub(crate) fn from_chat(body: &[u8]) -> Result<Conversation, BadRequest> {
    let request: ChatRequest = parse(body)?;
    let turns = request
        .messages
        .into_iter()
        .map(|message| Turn {
            from_user: message.role == "user",
            texts: texts(message.content),
        })
        .collect();
    let first_tool = request
        .tools
        .into_iter()
        .flatten()
        .find_map(ChatTool::into_name);
    Ok(Conversation {
        model: request.model,
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        turns,
        system: texts(request.system),
        first_tool,
        script: request.mock,
        echo: Vec::new(),
    })
}

// ---- OpenAI Responses --------------------------------------------------------------------------

#[derive(Deserialize)]
struct ResponsesRequest {
    model: String,
    #[serde(default)]
    input: Option<ResponsesInput>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    mock: Option<Map<String, Value>>,
    #[serde(default)]
    instructions: Option<Value>,
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<Value>,
    #[serde(default)]
    max_output_tokens: Option<Value>,
    #[serde(default)]
    previous_response_id: Option<Value>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    store: Option<Value>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    top_p: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    truncation: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    user: Option<Value>,
}

/// `input`: one user message as a string, or a list of items.
#[derive(Deserialize)]
#[serde(untagged)]
enum ResponsesInput {
    Text(String),
    Items(Vec<InputItem>),
    Other(IgnoredAny),
}

/// An item the reader understands, or anything else (kept as a turn that is nobody's text).
#[derive(Deserialize)]
#[serde(untagged)]
enum InputItem {
    Known(Item),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Item {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    /// `function_call_output`'s result: a string, or content parts.
    #[serde(default)]
    output: Option<Content>,
}

impl From<InputItem> for Turn {
    fn from(item: InputItem) -> Turn {
        let InputItem::Known(item) = item else {
            return Turn::default();
        };
        match item.kind.as_deref() {
            // A message item may leave its type out (the "easy" input message).
            None | Some("message") => Turn {
                from_user: item.role.as_deref() == Some("user"),
                texts: texts(item.content),
            },
            Some("function_call_output") => Turn {
                from_user: false,
                texts: texts(item.output),
            },
            Some(_) => Turn::default(),
        }
    }
}

/// `POST /v1/responses`.
pub(crate) fn from_responses(body: &[u8]) -> Result<Conversation, BadRequest> {
    let request: ResponsesRequest = parse(body)?;
    let turns = match request.input {
        Some(ResponsesInput::Text(text)) => vec![Turn {
            from_user: true,
            texts: vec![text],
        }],
        Some(ResponsesInput::Items(items)) => items.into_iter().map(Turn::from).collect(),
        Some(ResponsesInput::Other(_)) | None => Vec::new(),
    };
    let system = match &request.instructions {
        Some(Value::String(text)) => vec![text.clone()],
        _ => Vec::new(),
    };
    // Responses tools are flat: `{"type": "function", "name": ...}`; built-in tools have no name.
    let first_tool = request
        .tools
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|tool| tool.get("name").and_then(Value::as_str))
        .map(str::to_owned);
    let echoed = [
        ("instructions", request.instructions),
        ("tools", request.tools),
        ("tool_choice", request.tool_choice),
        ("parallel_tool_calls", request.parallel_tool_calls),
        ("max_output_tokens", request.max_output_tokens),
        ("previous_response_id", request.previous_response_id),
        ("reasoning", request.reasoning),
        ("store", request.store),
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("text", request.text),
        ("truncation", request.truncation),
        ("metadata", request.metadata),
        ("user", request.user),
    ];
    let echo = echoed
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    Ok(Conversation {
        model: request.model,
        stream: request.stream.unwrap_or(false),
        include_usage: true,
        turns,
        system,
        first_tool,
        script: request.mock,
        echo,
    })
}

// ---- Gemini ------------------------------------------------------------------------------------

/// Google's JSON parser takes both spellings of a field; the SDKs send camelCase.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiRequest {
    #[serde(default)]
    contents: Vec<GeminiContent>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<GeminiContent>,
    #[serde(default)]
    tools: Vec<GeminiTool>,
    #[serde(default)]
    mock: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct GeminiContent {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<GeminiPart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiPart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "function_response")]
    function_response: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiTool {
    #[serde(default, alias = "function_declarations")]
    function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Deserialize)]
struct FunctionDeclaration {
    #[serde(default)]
    name: Option<String>,
}

impl GeminiContent {
    fn into_texts(self) -> Vec<String> {
        self.parts
            .into_iter()
            .filter_map(|part| part.text)
            .collect()
    }
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`: the model and whether
/// to stream come from the URL, not the body.
pub(crate) fn from_gemini(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<Conversation, BadRequest> {
    let request: GeminiRequest = parse(body)?;
    let turns = request
        .contents
        .into_iter()
        .map(|content| {
            // A tool result travels in a "user" content; it is the tool speaking, not the user.
            let tool_result = content.parts.iter().any(|p| p.function_response.is_some());
            let by_user = content.role.as_deref().is_none_or(|role| role == "user");
            Turn {
                from_user: by_user && !tool_result,
                texts: content.into_texts(),
            }
        })
        .collect();
    let first_tool = request
        .tools
        .into_iter()
        .flat_map(|tool| tool.function_declarations)
        .find_map(|declaration| declaration.name);
    Ok(Conversation {
        model: model.to_owned(),
        stream,
        include_usage: true,
        turns,
        system: request
            .system_instruction
            .map(GeminiContent::into_texts)
            .unwrap_or_default(),
        first_tool,
        script: request.mock,
        echo: Vec::new(),
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed parse should fail the test")]
mod tests {
    use super::*;

    fn users(conversation: &Conversation) -> Vec<(bool, String)> {
        conversation
            .turns
            .iter()
            .map(|turn| (turn.from_user, turn.joined()))
            .collect()
    }

    #[test]
    fn responses_input_is_a_string_or_items_of_every_kind() {
        let string = from_responses(br#"{"model":"m","input":"hi"}"#).unwrap();
        assert_eq!(users(&string), [(true, "hi".to_owned())]);
        let items = from_responses(
            br#"{"model":"m","instructions":"sys","input":[
            {"role":"user","content":"a"},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"b"},{"type":"input_image","image_url":"u"},{"type":"input_text","text":"c"}]},
            {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
            {"type":"function_call_output","call_id":"c1","output":"sunny"},
            {"type":"reasoning","summary":[]}, 7]}"#,
        )
        .unwrap();
        let expected = [
            (true, "a"),
            (true, "b c"),
            (false, ""),
            (false, "sunny"),
            (false, ""),
            (false, ""),
        ];
        let expected: Vec<(bool, String)> = expected
            .iter()
            .map(|(u, t)| (*u, (*t).to_owned()))
            .collect();
        assert_eq!(users(&items), expected);
        assert_eq!(items.system, ["sys"]);
        assert_eq!(items.echo[0], ("instructions", Value::from("sys")));
    }

    #[test]
    fn responses_first_tool_is_the_first_with_a_name() {
        let request = br#"{"model":"m","input":"x","tools":[{"type":"web_search_preview"},
            {"type":"function","name":"lookup"},{"type":"function","name":"other"}]}"#;
        let conversation = from_responses(request).unwrap();
        assert_eq!(conversation.first_tool.as_deref(), Some("lookup"));
    }

    #[test]
    fn gemini_reads_contents_system_and_function_declarations_in_either_spelling() {
        let camel = from_gemini(
            br#"{"contents":[{"role":"user","parts":[{"text":"a"},{"text":"b"}]},
            {"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},
            {"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]},
            {"parts":[{"text":"no role"}]}],
            "systemInstruction":{"parts":[{"text":"sys"}]},
            "tools":[{"googleSearch":{}},{"functionDeclarations":[{"name":"lookup"}]}]}"#,
            "gemini-x",
            true,
        )
        .unwrap();
        let expected = [
            (true, "a b".to_owned()),
            (false, String::new()),
            (false, String::new()),
            (true, "no role".to_owned()),
        ];
        assert_eq!(users(&camel), expected);
        assert_eq!(camel.system, ["sys"]);
        assert_eq!(camel.first_tool.as_deref(), Some("lookup"));
        assert_eq!((camel.model.as_str(), camel.stream), ("gemini-x", true));

        let snake = from_gemini(
            br#"{"system_instruction":{"parts":[{"text":"s"}]},
            "tools":[{"function_declarations":[{"name":"t"}]}]}"#,
            "g",
            false,
        )
        .unwrap();
        assert_eq!(snake.system, ["s"]);
        assert_eq!(snake.first_tool.as_deref(), Some("t"));
    }
}
