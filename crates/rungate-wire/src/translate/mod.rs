//! Translation between wire dialects, so that a call can fail over from one vendor to another
//! while the agent keeps seeing the format it sent.
//!
//! Every dialect is read into and written from one small intermediate representation ([`ir`]):
//! four readers and four writers make every pair work, instead of twelve pairwise mappings that
//! drift apart. The IR holds only what all four dialects can say (messages, system prompt, text
//! and image parts, tools and tool choice, tool calls and results, sampling limits, stop reason,
//! usage); everything else is dropped on purpose, and each dialect's `request.rs` lists what it
//! drops. What cannot be dropped without changing the meaning of the call (a second candidate,
//! a server-side tool, a stored conversation) is a [`TranslateError::Unsupported`] instead.
//!
//! Direction: requests go from the client's dialect to the upstream's; answers, streams and
//! errors go from the upstream's dialect back to the client's. The same dialect on both sides
//! returns the body unchanged: there is nothing to translate and the gateway forwards as is.
//!
//! This is the slow path (a failover), so it parses whole JSON values rather than the borrowed,
//! skip-the-rest readers the pass-through path uses.

mod anthropic;
mod error_body;
mod gemini;
mod ir;
mod openai;
mod read;
mod responses;
mod stream;

pub use error_body::translate_error;
pub use stream::StreamTranslator;

use serde_json::{Map, Value};

use crate::Dialect;

/// How to write a translated request.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The upstream's model name, written into the body (Gemini carries it in the URL instead).
    pub model: &'a str,
    /// Anthropic requires `max_tokens`: this fills it when the client set no limit.
    pub default_max_tokens: u64,
}

/// How to write a translated answer or stream.
#[derive(Debug, Clone, Copy)]
pub struct ResponseOptions<'a> {
    /// The model name to report to the client.
    pub model: &'a str,
    /// OpenAI `created` / Responses `created_at`, in Unix seconds.
    pub created_unix: u64,
}

/// Why a body could not be translated. `field` names the offending member as a path
/// (`messages[2].content[0].type`) so the client can be told what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("`{0}` is required")]
    MissingField(&'static str),
    #[error("`{field}` is invalid: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("`{field}` cannot be translated: {reason}")]
    Unsupported { field: String, reason: String },
}

impl TranslateError {
    /// The member the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            TranslateError::MalformedJson(_) => None,
            TranslateError::MissingField(field) => Some(field),
            TranslateError::InvalidField { field, .. }
            | TranslateError::Unsupported { field, .. } => Some(field),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Rewrites a client's request body (`from`) into the upstream's dialect (`to`).
pub fn translate_request(
    from: Dialect,
    to: Dialect,
    body: &[u8],
    opts: &RequestOptions,
) -> Result<Vec<u8>, TranslateError> {
    rewrite(
        from == to,
        body,
        |object| match from {
            Dialect::OpenAi => openai::request::read(object),
            Dialect::Anthropic => anthropic::request::read(object),
            Dialect::Gemini => gemini::request::read(object),
            Dialect::Responses => responses::request::read(object),
        },
        |request| match to {
            Dialect::OpenAi => openai::request::write(request, opts),
            Dialect::Anthropic => anthropic::request::write(request, opts),
            Dialect::Gemini => gemini::request::write(request),
            Dialect::Responses => responses::request::write(request, opts),
        },
    )
}

/// Rewrites an upstream's non-streaming answer (`from`) into the client's dialect (`to`).
pub fn translate_response(
    from: Dialect,
    to: Dialect,
    body: &[u8],
    opts: &ResponseOptions,
) -> Result<Vec<u8>, TranslateError> {
    rewrite(
        from == to,
        body,
        |object| match from {
            Dialect::OpenAi => openai::answer::read(object),
            Dialect::Anthropic => anthropic::answer::read(object),
            Dialect::Gemini => gemini::answer::read(object),
            Dialect::Responses => responses::answer::read(object),
        },
        |answer| {
            Ok(match to {
                Dialect::OpenAi => openai::answer::write(answer, opts),
                Dialect::Anthropic => anthropic::answer::write(answer, opts),
                Dialect::Gemini => gemini::answer::write(answer, opts),
                Dialect::Responses => responses::answer::write(answer, opts),
            })
        },
    )
}

/// The frame of every whole-body translation: the same dialect on both sides passes the body
/// through untouched (`same`); otherwise it is parsed, read into the IR by `read` and written
/// out by `write`.
fn rewrite<T>(
    same: bool,
    body: &[u8],
    read: impl FnOnce(&Map<String, Value>) -> Result<T, TranslateError>,
    write: impl FnOnce(&T) -> Result<Map<String, Value>, TranslateError>,
) -> Result<Vec<u8>, TranslateError> {
    if same {
        return Ok(body.to_vec());
    }
    let object = parse_object(body)?;
    let written = write(&read(&object)?)?;
    Ok(to_bytes(&Value::Object(written)))
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(TranslateError::MalformedJson(
            "expected a JSON object".to_owned(),
        )),
        Err(err) => Err(TranslateError::MalformedJson(err.to_string())),
    }
}

/// Serializing a `Value` cannot fail (its keys are strings); an empty body is the unreachable
/// fallback that keeps this free of panics.
pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
