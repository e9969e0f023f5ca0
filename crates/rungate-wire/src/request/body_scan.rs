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
    pub(super) include_usage: bool,
    pub(super) messages: Option<Messages>,
    pub(super) system_chars: usize,
    pub(super) tools: ToolList,
    pub(super) rungate: Option<RungateField<'a>>,
}

/// The `messages` member: an array (with its prompt size), or the kind of what it was instead.
#[derive(Debug)]
pub(super) enum Messages {
    Array { chars: usize },
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
        let openai = self.dialect == Dialect::OpenAi;
        let mut scan = BodyScan::default();
        while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
            match key.as_ref() {
                "model" => scan.model = Some(map.next_value()?),
                "stream" => scan.stream = Some(map.next_value()?),
                "max_tokens" => scan.max_tokens = Some(map.next_value()?),
                "max_completion_tokens" if openai => {
                    scan.max_completion_tokens = Some(map.next_value()?);
                }
                "stream_options" if openai => {
                    scan.include_usage = map.next_value::<IncludeUsage>()?.0;
                }
                "messages" => scan.messages = Some(map.next_value()?),
                "system" if !openai => scan.system_chars = map.next_value::<TextChars>()?.0,
                "tools" => scan.tools.absorb(map.next_value()?),
                "functions" if openai => scan.tools.absorb(map.next_value()?),
                "rungate" => scan.rungate = Some(map.next_value()?),
                _ => {
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

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut chars = 0usize;
                while let Some(MessageChars(n)) = seq.next_element()? {
                    chars = chars.saturating_add(n);
                }
                Ok(Messages::Array { chars })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
                drain_map(map).map(|()| Messages::Other("an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Messages, E> {
                Ok(Messages::Other("a string"))
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
        d.deserialize_any(V)
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

/// Characters of prompt text in a content value: a string, or parts/blocks whose text lives
/// in `text`, nested `content` (tool results), `input` (tool use, as JSON) or `function.arguments`
/// (OpenAI tool calls). Other members (images, cache control, ids) are skipped.
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
                "text" | "content" | "function" | "arguments" => map.next_value::<TextChars>()?.0,
                "input" => map.next_value::<&RawValue>()?.get().len(),
                _ => map.next_value::<IgnoredAny>().map(|_| 0)?,
            };
            chars = chars.saturating_add(n);
        }
        Ok(TextChars(chars))
    }
    skip_other_values!(TextChars, TextChars(0));
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

impl<'de> Deserialize<'de> for ToolList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of tools")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ToolList, A::Error> {
                let mut list = ToolList::default();
                while let Some(raw) = seq.next_element::<&RawValue>()? {
                    list.json_len = list.json_len.saturating_add(raw.get().len());
                    if let Ok(ToolName(Some(name))) = serde_json::from_str(raw.get()) {
                        list.names.push(name);
                    }
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
        d.deserialize_any(V)
    }
}

/// The name of one tool definition, wherever the dialect keeps it: `name` (Anthropic, legacy
/// OpenAI functions), `function.name` (OpenAI function tools), `custom.name` (OpenAI custom tools).
struct ToolName(Option<String>);

impl<'de> Deserialize<'de> for ToolName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tool definition")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolName, A::Error> {
                let mut name = None;
                while let Some(CowStr(key)) = map.next_key::<CowStr>()? {
                    match key.as_ref() {
                        "name" => {
                            if let Some(s) = map.next_value::<Scalar>()?.into_string() {
                                name.get_or_insert(s);
                            }
                        }
                        "function" | "custom" => {
                            if let ToolName(Some(s)) = map.next_value()? {
                                name = Some(s);
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ToolName(name))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ToolName, A::Error> {
                drain_seq(seq).map(|()| ToolName(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ToolName, E> {
                Ok(ToolName(None))
            }
            skip_other_values!(ToolName, ToolName(None));
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
