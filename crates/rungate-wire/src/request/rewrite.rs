//! The few changes Rungate makes to a request body before forwarding it: strip its own
//! `rungate` member, inject `stream_options.include_usage`, swap the model on failover, clamp
//! the output-token limit.
//!
//! Byte-faithfulness is the point: only the top level (and `stream_options`, or Gemini's
//! `generationConfig` when clamping) is taken apart, as ordered `(key, raw JSON text)` pairs, so
//! every other value (numbers in their original spelling, unknown fields, nested whitespace) is
//! copied through verbatim, in its original order. Only the separators between the members of a
//! taken-apart object are re-emitted compactly. A rewrite that would change nothing returns the
//! original bytes.

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{WireError, malformed};
use crate::Dialect;
use crate::lenient::CowStr;

/// What to change in a request body; the default changes nothing.
#[derive(Debug, Clone, Default)]
pub struct Rewrite<'a> {
    /// Remove the top-level `rungate` member.
    pub strip_rungate: bool,
    /// Set `stream_options.include_usage = true`, keeping other stream options (OpenAI only:
    /// Anthropic streams always report usage).
    pub inject_include_usage: bool,
    /// Replace `model`. Gemini bodies have none (the model is part of the URL: see
    /// [`crate::GeminiPath::with_model`]), so there this changes nothing.
    pub model: Option<&'a str>,
    /// Set the output-token limit field the request uses.
    pub max_output_tokens: Option<u64>,
}

impl Rewrite<'_> {
    /// True when applying this rewrite cannot change any body.
    pub fn is_noop(&self) -> bool {
        !self.strip_rungate
            && !self.inject_include_usage
            && self.model.is_none()
            && self.max_output_tokens.is_none()
    }
}

/// Applies the rewrite preserving key order, unknown fields and numbers exactly; returns the
/// original bytes (cheap clone) when `is_noop()` or when the body already says what the rewrite
/// would write.
///
/// `max_output_tokens` sets, for OpenAI, `max_completion_tokens` when the request has it,
/// `max_tokens` when only that one is set, both when both are set, and `max_completion_tokens`
/// when neither is (reasoning models reject `max_tokens`); for Anthropic, `max_tokens`; for
/// Responses, `max_output_tokens`; for Gemini, `generationConfig.maxOutputTokens` (the other
/// members of `generationConfig` are kept verbatim, a snake_case spelling already used is kept).
pub fn rewrite_request(
    dialect: Dialect,
    body: &Bytes,
    rewrite: &Rewrite,
) -> Result<Bytes, WireError> {
    if rewrite.is_noop() {
        return Ok(body.clone());
    }
    let mut object = Members::parse(body)?;
    let mut changed = false;
    if rewrite.strip_rungate {
        changed |= object.remove("rungate");
    }
    if let Some(model) = rewrite.model.filter(|_| dialect != Dialect::Gemini) {
        let value = serde_json::to_string(model).map_err(malformed)?;
        changed |= object.set("model", value);
    }
    if let Some(limit) = rewrite.max_output_tokens {
        changed |= clamp(dialect, &mut object, limit)?;
    }
    let wants_usage = rewrite.inject_include_usage && dialect == Dialect::OpenAi;
    if let Some(options) = with_include_usage(wants_usage, object.get("stream_options"))? {
        changed |= object.set("stream_options", options);
    }
    if !changed {
        return Ok(body.clone());
    }
    object.render().map(Bytes::from)
}

/// Writes the output-token limit into the field(s) the dialect and the request use.
fn clamp(dialect: Dialect, object: &mut Members<'_>, limit: u64) -> Result<bool, WireError> {
    const COMPLETION: &str = "max_completion_tokens";
    const LEGACY: &str = "max_tokens";
    let fields: &[&'static str] = match dialect {
        Dialect::Anthropic => &[LEGACY],
        Dialect::Responses => &["max_output_tokens"],
        Dialect::OpenAi => match (object.has_value(COMPLETION), object.has_value(LEGACY)) {
            (true, true) => &[COMPLETION, LEGACY],
            (false, true) => &[LEGACY],
            (true, false) | (false, false) => &[COMPLETION],
        },
        Dialect::Gemini => return clamp_generation_config(object, limit),
    };
    let mut changed = false;
    for field in fields {
        changed |= object.set(field, limit.to_string());
    }
    Ok(changed)
}

/// Gemini keeps the limit one level down, in `generationConfig.maxOutputTokens`; the REST
/// surface accepts snake_case too, and a spelling the request already uses is kept (writing the
/// other one next to it would name the field twice).
fn clamp_generation_config(object: &mut Members<'_>, limit: u64) -> Result<bool, WireError> {
    let outer = spelling(object, "generationConfig", "generation_config");
    let config = match object.get(outer) {
        Some(raw) if raw.starts_with('{') => {
            let mut config = Members::parse(raw.as_bytes())?;
            let inner = spelling(&config, "maxOutputTokens", "max_output_tokens");
            if !config.set(inner, limit.to_string()) {
                return Ok(false);
            }
            config.render()?
        }
        // Absent, null or not an object: a config that says only the limit.
        _ => format!(r#"{{"maxOutputTokens":{limit}}}"#),
    };
    Ok(object.set(outer, config))
}

/// The snake_case spelling of a field when only that one is present, else the camelCase one.
fn spelling(object: &Members<'_>, camel: &'static str, snake: &'static str) -> &'static str {
    if object.get(camel).is_none() && object.get(snake).is_some() {
        snake
    } else {
        camel
    }
}

/// The new `stream_options` text, or `None` when not wanted or it already asks for usage.
fn with_include_usage(wanted: bool, current: Option<&str>) -> Result<Option<String>, WireError> {
    const FRESH: &str = r#"{"include_usage":true}"#;
    if !wanted {
        return Ok(None);
    }
    match current {
        Some(raw) if raw.starts_with('{') => {
            let mut options = Members::parse(raw.as_bytes())?;
            if options.set("include_usage", "true".to_owned()) {
                options.render().map(Some)
            } else {
                Ok(None)
            }
        }
        // Absent, null or not an object: replace it with one that asks for usage.
        _ => Ok(Some(FRESH.to_owned())),
    }
}

/// A JSON object as ordered `(key, raw value text)` pairs.
struct Members<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Members<'a> {
    fn parse(json: &'a [u8]) -> Result<Self, WireError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let members = de.deserialize_map(MembersVisitor).map_err(malformed)?;
        de.end().map_err(malformed)?;
        Ok(members)
    }

    /// The value of `key` (the last one, as JSON parsers resolve duplicates).
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// `key` is present with a value other than `null`.
    fn has_value(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != "null")
    }

    /// Sets every occurrence of `key` to `value` (raw JSON), appending it when absent.
    /// Returns whether anything changed.
    fn set(&mut self, key: &'static str, value: String) -> bool {
        let mut found = false;
        let mut changed = false;
        for (k, v) in &mut self.entries {
            if k == key {
                found = true;
                if *v != value {
                    *v = Cow::Owned(value.clone());
                    changed = true;
                }
            }
        }
        if !found {
            self.entries.push((Cow::Borrowed(key), Cow::Owned(value)));
        }
        changed || !found
    }

    /// Removes every occurrence of `key`; returns whether there was one.
    fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        self.entries.len() != before
    }

    /// The object as compact JSON; keys are re-escaped, values are copied verbatim.
    fn render(&self) -> Result<String, WireError> {
        let size: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum();
        let mut out = String::with_capacity(size + 2);
        out.push('{');
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key.as_ref()).map_err(malformed)?);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Ok(out)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some((CowStr(key), raw)) = map.next_entry::<CowStr, &RawValue>()? {
            entries.push((key, Cow::Borrowed(raw.get())));
        }
        Ok(Members { entries })
    }
}
