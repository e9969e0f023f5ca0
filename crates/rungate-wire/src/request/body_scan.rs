//! The single serde pass over a request body behind [`super::inspect_request`].
//!
//! Hand-written visitors rather than derived structs, for two reasons: a derived struct would
//! either build every message or reject the body on the first unexpected shape, and prompt text
//! only needs to be counted, never copied. The visitors never fail on content; only JSON syntax
//! errors (and a non-object body) come out of here. Judging field types is left to the caller.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::Dialect;
use crate::lenient::{CowStr, Scalar};

/// What one pass over the body saw; `None` means the key was absent.
#[derive(Debug, Default)]
pub(super) struct BodyScan<'a> {
    pub(super) model: Option<Scalar<'a>>,
    pub(super) stream: Option<Scalar<'a>>,
    pub(super) max_tokens: Option<Scalar<'a>>,
    pub(super) max_completion_tokens: Option<Scalar<'a>>,
    /// Responses `max_output_tokens`; Gemini `generationConfig.maxOutputTokens`.
    pub(super) max_output_tokens: Option<Scalar<'a>>,
    pub(super) include_usage: bool,
    /// The prompt member: `messages`, Responses `input`, Gemini `contents`.
    pub(super) messages: Option<Messages>,
    pub(super) system_chars: usize,
    pub(super) tools: ToolList,
    pub(super) rungate: Option<RungateField<'a>>,
}

/// The prompt member: an array or a string (with its prompt size), or the kind of what it was
/// instead.
#[derive(Debug)]
pub(super) enum Messages {
    Array { chars: usize },
    Text { chars: usize },
    Null,
    Other(&'static str),
}

/// Rungate's own `rungate` member.
#[derive(Debug)]
pub(super) enum RungateField<'a> {
    Object { run_id: Option<Scalar<'a>> },
    Null,
    Other(&'static str),
}

/// The top-level members the scan reads, by what they mean rather than how a dialect spells them.
enum Field {
    Model,
    Stream,
    MaxTokens,
    MaxCompletionTokens,
    MaxOutputTokens,
    GenerationConfig,
    StreamOptions,
    Prompt,
    System,
    Tools,
    Rungate,
    Other,
}

impl Field {
    /// Gemini names no model (it is in the URL) and no `stream` (the method in the URL decides);
    /// its REST surface accepts both the camelCase and the snake_case spelling of a field.
    fn of(dialect: Dialect, key: &str) -> Field {
        use Dialect::{Anthropic, Gemini, OpenAi, Responses};
        match (dialect, key) {
            (_, "rungate") => Field::Rungate,
            (_, "tools") | (OpenAi, "functions") => Field::Tools,
            (Gemini, "contents") => Field::Prompt,
            (Gemini, "systemInstruction" | "system_instruction") => Field::System,
            (Gemini, "generationConfig" | "generation_config") => Field::GenerationConfig,
            (Gemini, _) => Field::Other,
            (_, "model") => Field::Model,
            (_, "stream") => Field::Stream,
            (OpenAi | Anthropic, "messages") | (Responses, "input") => Field::Prompt,
            (OpenAi | Anthropic, "max_tokens") => Field::MaxTokens,
            (OpenAi, "max_completion_tokens") => Field::MaxCompletionTokens,
            (OpenAi, "stream_options") => Field::StreamOptions,
            (Responses, "max_output_tokens") => Field::MaxOutputTokens,
            (Anthropic, "system") | (Responses, "instructions") => Field::System,
            _ => Field::Other,
        }
    }
}

/// Reads a whole request body in `dialect`.
pub(super) struct BodySeed {
    pub(super) dialect: Dialect,
}

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = BodyScan<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed {
    type Value = BodyScan<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dialect = self.dialect;
        let mut scan = BodyScan::default();
        while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
            match Field::of(dialect, &key) {
                Field::Model => scan.model = Some(map.next_value()?),
                Field::Stream => scan.stream = Some(map.next_value()?),
                Field::MaxTokens => scan.max_tokens = Some(map.next_value()?),
                Field::MaxCompletionTokens => {
                    scan.max_completion_tokens = Some(map.next_value()?);
                }
                Field::MaxOutputTokens => scan.max_output_tokens = Some(map.next_value()?),
                Field::GenerationConfig => {
                    scan.max_output_tokens = map.next_value::<GenerationLimit>()?.0;
                }
                Field::StreamOptions => scan.include_usage = map.next_value::<IncludeUsage>()?.0,
                Field::Prompt => scan.messages = Some(map.next_value_seed(PromptSeed(dialect))?),
                Field::System => scan.system_chars = map.next_value_seed(CharsSeed(dialect))?,
                Field::Tools => scan.tools.absorb(map.next_value_seed(ToolsSeed(dialect))?),
                Field::Rungate => scan.rungate = Some(map.next_value()?),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(scan)
    }
}

/// Implements the "accept anything, skip what is not understood" part of a visitor: every
/// scalar maps to `$default`, containers are drained.
macro_rules! skip_other_values {
    ($value:ty, $default:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($default)
        }
    };
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads the prompt member of `dialect`, counting its prompt characters.
struct PromptSeed(Dialect);

impl<'de> DeserializeSeed<'de> for PromptSeed {
    type Value = Messages;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Messages, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PromptSeed {
    type Value = Messages;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
        let mut chars = 0usize;
        while let Some(n) = seq.next_element_seed(ItemSeed(self.0))? {
            chars = chars.saturating_add(n);
        }
        Ok(Messages::Array { chars })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
        drain_map(map).map(|()| Messages::Other("an object"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Messages, E> {
        Ok(Messages::Text {
            chars: v.chars().count(),
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Messages, E> {
        Ok(Messages::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Messages, E> {
        Ok(Messages::Other("a boolean"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Messages, E> {
        Ok(Messages::Other("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Messages, E> {
        Ok(Messages::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Messages, E> {
        Ok(Messages::Other("a number"))
    }
}

/// Prompt characters of one element of the prompt array: a chat message, a Responses input
/// item (message, `function_call`, `function_call_output`, ...) or a Gemini `Content`.
struct ItemSeed(Dialect);

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        match self.0 {
            Dialect::OpenAi | Dialect::Anthropic => MessageChars::deserialize(d).map(|m| m.0),
            Dialect::Responses => TextChars::deserialize(d).map(|t| t.0),
            Dialect::Gemini => GeminiChars::deserialize(d).map(|g| g.0),
        }
    }
}

/// Prompt characters of the system member: Anthropic `system`, Responses `instructions`,
/// Gemini `systemInstruction` (a `Content`).
struct CharsSeed(Dialect);

impl<'de> DeserializeSeed<'de> for CharsSeed {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        match self.0 {
            Dialect::OpenAi | Dialect::Anthropic | Dialect::Responses => {
                TextChars::deserialize(d).map(|t| t.0)
            }
            Dialect::Gemini => GeminiChars::deserialize(d).map(|g| g.0),
        }
    }
}

/// Prompt characters of one message: its `content`, and OpenAI's `tool_calls` arguments.
/// Roles are not looked at, so unknown ones count like any other.
struct MessageChars(usize);

impl<'de> Deserialize<'de> for MessageChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageChars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MessageChars, A::Error> {
                let mut chars = 0usize;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    let n = match key.as_ref() {
                        "content" | "tool_calls" => map.next_value::<TextChars>()?.0,
                        _ => map.next_value::<IgnoredAny>().map(|_| 0)?,
                    };
                    chars = chars.saturating_add(n);
                }
                Ok(MessageChars(chars))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MessageChars, A::Error> {
                drain_seq(seq).map(|()| MessageChars(0))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MessageChars, E> {
                Ok(MessageChars(0))
            }
            skip_other_values!(MessageChars, MessageChars(0));
        }
        d.deserialize_any(V)
    }
}

/// Characters of prompt text in a content value: a string, or parts/blocks/items whose text
/// lives in `text`, nested `content` (tool results), `input` (tool use, as JSON),
/// `function.arguments` (OpenAI tool calls), `arguments` and `output` (Responses function calls
/// and their results). Other members (images, cache control, ids) are skipped.
struct TextChars(usize);

impl<'de> Deserialize<'de> for TextChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextCharsVisitor)
    }
}

struct TextCharsVisitor;

impl<'de> Visitor<'de> for TextCharsVisitor {
    type Value = TextChars;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("prompt content")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextChars, E> {
        Ok(TextChars(v.chars().count()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextChars, A::Error> {
        let mut chars = 0usize;
        while let Some(TextChars(n)) = seq.next_element()? {
            chars = chars.saturating_add(n);
        }
        Ok(TextChars(chars))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextChars, A::Error> {
        let mut chars = 0usize;
        while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
            let n = match key.as_ref() {
                "text" | "content" | "function" | "arguments" | "output" => {
                    map.next_value::<TextChars>()?.0
                }
                "input" => map.next_value::<&RawValue>()?.get().len(),
                _ => map.next_value::<IgnoredAny>().map(|_| 0)?,
            };
            chars = chars.saturating_add(n);
        }
        Ok(TextChars(chars))
    }
    skip_other_values!(TextChars, TextChars(0));
}

/// Characters of prompt text in Gemini `Content` values: `parts[].text`, function call `args`
/// and function `response` (as JSON), executable code and its output. Inline and file data
/// (images, audio, documents) are skipped: their size says nothing about their tokens.
struct GeminiChars(usize);

impl<'de> Deserialize<'de> for GeminiChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GeminiChars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("Gemini content")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GeminiChars, E> {
                Ok(GeminiChars(v.chars().count()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GeminiChars, A::Error> {
                let mut chars = 0usize;
                while let Some(GeminiChars(n)) = seq.next_element()? {
                    chars = chars.saturating_add(n);
                }
                Ok(GeminiChars(chars))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GeminiChars, A::Error> {
                let mut chars = 0usize;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    let n = match key.as_ref() {
                        "parts"
                        | "text"
                        | "functionCall"
                        | "function_call"
                        | "functionResponse"
                        | "function_response"
                        | "executableCode"
                        | "executable_code"
                        | "codeExecutionResult"
                        | "code_execution_result"
                        | "code"
                        | "output" => map.next_value::<GeminiChars>()?.0,
                        "args" | "response" => map.next_value::<&RawValue>()?.get().len(),
                        _ => map.next_value::<IgnoredAny>().map(|_| 0)?,
                    };
                    chars = chars.saturating_add(n);
                }
                Ok(GeminiChars(chars))
            }
            skip_other_values!(GeminiChars, GeminiChars(0));
        }
        d.deserialize_any(V)
    }
}

/// Names and total JSON length of declared tools (`tools`, and OpenAI's legacy `functions`).
#[derive(Debug, Default)]
pub(super) struct ToolList {
    pub(super) names: Vec<String>,
    pub(super) json_len: usize,
}

impl ToolList {
    fn absorb(&mut self, other: ToolList) {
        self.names.extend(other.names);
        self.json_len = self.json_len.saturating_add(other.json_len);
    }
}

/// Reads a `tools` member in `dialect`.
struct ToolsSeed(Dialect);

impl<'de> DeserializeSeed<'de> for ToolsSeed {
    type Value = ToolList;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ToolList, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToolsSeed {
    type Value = ToolList;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tools")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ToolList, A::Error> {
        let mut list = ToolList::default();
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            list.json_len = list.json_len.saturating_add(raw.get().len());
            tool_names(self.0, raw.get(), &mut list.names);
        }
        Ok(list)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ToolList, A::Error> {
        drain_map(map).map(|()| ToolList::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<ToolList, E> {
        Ok(ToolList::default())
    }
    skip_other_values!(ToolList, ToolList::default());
}

/// The names one tool definition declares. A Responses built-in tool (`{"type":"web_search"}`)
/// has no name, so it is declared by its `type`; a Gemini `Tool` holds many
/// `functionDeclarations`, and a built-in one (`{"googleSearch":{}}`) is declared by its key.
fn tool_names(dialect: Dialect, json: &str, names: &mut Vec<String>) {
    match dialect {
        Dialect::OpenAi | Dialect::Anthropic => {
            if let Ok(ToolName {
                name: Some(name), ..
            }) = serde_json::from_str(json)
            {
                names.push(name);
            }
        }
        Dialect::Responses => {
            if let Ok(ToolName { name, kind }) = serde_json::from_str(json) {
                names.extend(name.or(kind));
            }
        }
        Dialect::Gemini => {
            if let Ok(GeminiTool(declared)) = serde_json::from_str(json) {
                names.extend(declared);
            }
        }
    }
}

/// The name of one tool definition, wherever the dialect keeps it: `name` (Anthropic, Responses,
/// legacy OpenAI functions), `function.name` (OpenAI function tools), `custom.name` (OpenAI
/// custom tools); and its `type`.
struct ToolName {
    name: Option<String>,
    kind: Option<String>,
}

impl<'de> Deserialize<'de> for ToolName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tool definition")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolName, A::Error> {
                let mut tool = ToolName::NONE;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    match key.as_ref() {
                        "name" => {
                            if let Some(s) = map.next_value::<Scalar>()?.into_string() {
                                tool.name.get_or_insert(s);
                            }
                        }
                        "type" => tool.kind = map.next_value::<Scalar>()?.into_string(),
                        "function" | "custom" => {
                            if let ToolName { name: Some(s), .. } = map.next_value()? {
                                tool.name = Some(s);
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(tool)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ToolName, A::Error> {
                drain_seq(seq).map(|()| ToolName::NONE)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ToolName, E> {
                Ok(ToolName::NONE)
            }
            skip_other_values!(ToolName, ToolName::NONE);
        }
        d.deserialize_any(V)
    }
}

impl ToolName {
    const NONE: ToolName = ToolName {
        name: None,
        kind: None,
    };
}

/// The names a Gemini `Tool` declares: each of its `functionDeclarations[].name`, and the key of
/// every other member (`googleSearch`, `codeExecution`, `urlContext`, ...) in camelCase.
struct GeminiTool(Vec<String>);

impl<'de> Deserialize<'de> for GeminiTool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GeminiTool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Gemini tool")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GeminiTool, A::Error> {
                let mut names = Vec::new();
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    if key == "functionDeclarations" || key == "function_declarations" {
                        let FunctionNames(declared) = map.next_value()?;
                        names.extend(declared);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        names.push(camel_case(&key));
                    }
                }
                Ok(GeminiTool(names))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<GeminiTool, A::Error> {
                drain_seq(seq).map(|()| GeminiTool(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<GeminiTool, E> {
                Ok(GeminiTool(Vec::new()))
            }
            skip_other_values!(GeminiTool, GeminiTool(Vec::new()));
        }
        d.deserialize_any(V)
    }
}

/// The `name` of each function declaration; any other shape declares nothing.
struct FunctionNames(Vec<String>);

impl<'de> Deserialize<'de> for FunctionNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FunctionNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("function declarations")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FunctionNames, A::Error> {
                let mut names = Vec::new();
                while let Some(tool) = seq.next_element::<ToolName>()? {
                    names.extend(tool.name);
                }
                Ok(FunctionNames(names))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FunctionNames, A::Error> {
                drain_map(map).map(|()| FunctionNames(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<FunctionNames, E> {
                Ok(FunctionNames(Vec::new()))
            }
            skip_other_values!(FunctionNames, FunctionNames(Vec::new()));
        }
        d.deserialize_any(V)
    }
}

/// `google_search` → `googleSearch`, so a built-in Gemini tool has one name however it is spelled.
fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Gemini `generationConfig.maxOutputTokens` (either spelling); any other shape reads as absent.
struct GenerationLimit<'a>(Option<Scalar<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for GenerationLimit<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GenerationLimit<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a generation config")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut limit = None;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    if key == "maxOutputTokens" || key == "max_output_tokens" {
                        limit = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(GenerationLimit(limit))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq).map(|()| GenerationLimit(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(GenerationLimit(None))
            }
            skip_other_values!(GenerationLimit<'de>, GenerationLimit(None));
        }
        d.deserialize_any(V)
    }
}

/// `stream_options.include_usage == true`; any other shape reads as false.
struct IncludeUsage(bool);

impl<'de> Deserialize<'de> for IncludeUsage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IncludeUsage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("stream options")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IncludeUsage, A::Error> {
                let mut on = false;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    if key == "include_usage" {
                        on = map.next_value::<Scalar>()? == Scalar::Bool(true);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(IncludeUsage(on))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<IncludeUsage, A::Error> {
                drain_seq(seq).map(|()| IncludeUsage(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IncludeUsage, E> {
                Ok(IncludeUsage(false))
            }
            skip_other_values!(IncludeUsage, IncludeUsage(false));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RungateField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<&RawValue>::deserialize(d)? {
            None => Ok(RungateField::Null),
            Some(raw) => Ok(rungate_field(raw)),
        }
    }
}

/// Interprets the raw `rungate` member; it is tiny, so reading it twice costs nothing.
fn rungate_field(raw: &RawValue) -> RungateField<'_> {
    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(borrow, default)]
        run_id: Option<Scalar<'a>>,
    }
    match serde_json::from_str::<Scalar>(raw.get()) {
        Ok(Scalar::Object) => match serde_json::from_str::<Object>(raw.get()) {
            Ok(Object { run_id }) => RungateField::Object { run_id },
            Err(_) => RungateField::Other("an object"),
        },
        Ok(other) => RungateField::Other(other.kind()),
        Err(_) => RungateField::Other("invalid JSON"),
    }
}
