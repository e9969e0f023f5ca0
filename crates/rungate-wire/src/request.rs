//! Facts about an incoming request body, read in one borrowed pass.
//!
//! Governance needs a handful of fields (model, stream, max tokens, declared tools, Rungate's own
//! `rungate` field) and a size estimate of the prompt. Everything else is skipped without being
//! built, and the body itself is forwarded as received unless [`rewrite_request`] must change it.
//! Only the fields the gateway relies on are validated; unknown roles, fields and content part
//! types are the provider's business and never rejected here.

mod body_scan;
mod rewrite;
#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;

pub use rewrite::{Rewrite, rewrite_request};

use serde::de::DeserializeSeed;

use crate::Dialect;
use crate::lenient::Scalar;
use body_scan::{BodyScan, BodySeed, Messages, RungateField};

/// What the gateway needs to know about a request before forwarding it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
    /// OpenAI: `max_completion_tokens`, else `max_tokens`; Anthropic: `max_tokens`.
    pub max_output_tokens: Option<u64>,
    /// OpenAI: `stream_options.include_usage == true`; always false for Anthropic.
    pub include_usage: bool,
    /// OpenAI `tools[].function.name` (and `custom.name`, legacy `functions[].name`);
    /// Anthropic `tools[].name`.
    pub declared_tools: Vec<String>,
    /// Body field `"rungate": {"run_id": "..."}`.
    pub body_run_id: Option<String>,
    /// The body has a top-level `rungate` key, which must be removed before forwarding.
    pub has_rungate_field: bool,
    /// Characters of all prompt text (message contents, system, tool results, tool call
    /// arguments) plus the JSON length of tool definitions: the input-token estimate's basis.
    pub prompt_chars: usize,
}

/// Why a request body cannot be governed (the gateway answers 400 `invalid_request`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("malformed JSON at line {line} column {column}: {message}")]
    MalformedJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}`: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
}

/// Reads the facts governance needs from a request body in the given dialect.
///
/// The body must be a JSON object with a non-empty string `model` and an array `messages`
/// (`null` counts as missing). `stream` and the max-token fields must have their documented
/// types when present, because the gateway acts on them.
pub fn inspect_request(dialect: Dialect, body: &[u8]) -> Result<RequestFacts, WireError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let scan = BodySeed { dialect }
        .deserialize(&mut de)
        .map_err(malformed)?;
    de.end().map_err(malformed)?;
    facts_from_scan(dialect, scan)
}

fn facts_from_scan(dialect: Dialect, scan: BodyScan<'_>) -> Result<RequestFacts, WireError> {
    let model = model_name(scan.model)?;
    let message_chars = message_chars(scan.messages)?;
    let stream = match scan.stream {
        None | Some(Scalar::Null) => false,
        Some(Scalar::Bool(b)) => b,
        Some(other) => return Err(expected("stream", "a boolean", &other)),
    };
    let max_output_tokens = match dialect {
        Dialect::OpenAi => {
            match token_limit("max_completion_tokens", scan.max_completion_tokens)? {
                Some(n) => Some(n),
                None => token_limit("max_tokens", scan.max_tokens)?,
            }
        }
        Dialect::Anthropic | Dialect::Responses | Dialect::Gemini => {
            token_limit("max_tokens", scan.max_tokens)?
        }
    };
    Ok(RequestFacts {
        model,
        stream,
        max_output_tokens,
        include_usage: scan.include_usage,
        declared_tools: scan.tools.names,
        has_rungate_field: scan.rungate.is_some(),
        body_run_id: run_id(scan.rungate)?,
        prompt_chars: message_chars
            .saturating_add(scan.system_chars)
            .saturating_add(scan.tools.json_len),
    })
}

/// `model`: required, a non-empty string.
fn model_name(value: Option<Scalar<'_>>) -> Result<String, WireError> {
    match value {
        None | Some(Scalar::Null) => Err(WireError::MissingField("model")),
        Some(Scalar::Str(s)) if s.is_empty() => {
            Err(invalid("model", "must not be empty".to_owned()))
        }
        Some(Scalar::Str(s)) => Ok(s.into_owned()),
        Some(other) => Err(expected("model", "a string", &other)),
    }
}

/// `messages`: required, an array; yields its prompt characters.
fn message_chars(value: Option<Messages>) -> Result<usize, WireError> {
    match value {
        None | Some(Messages::Null) => Err(WireError::MissingField("messages")),
        Some(Messages::Other(kind)) => Err(invalid(
            "messages",
            format!("expected an array, found {kind}"),
        )),
        Some(Messages::Array { chars }) => Ok(chars),
    }
}

/// `rungate.run_id`: optional; when given, `rungate` must be an object and the id a string.
fn run_id(value: Option<RungateField<'_>>) -> Result<Option<String>, WireError> {
    match value {
        None | Some(RungateField::Null) => Ok(None),
        Some(RungateField::Other(kind)) => Err(invalid(
            "rungate",
            format!("expected an object, found {kind}"),
        )),
        Some(RungateField::Object { run_id }) => match run_id {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
            Some(other) => Err(expected("rungate.run_id", "a string", &other)),
        },
    }
}

/// A max-token field: absent or `null` is no limit; otherwise a non-negative integer.
fn token_limit(field: &'static str, value: Option<Scalar<'_>>) -> Result<Option<u64>, WireError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Unsigned(n)) => Ok(Some(n)),
        Some(other) => Err(expected(field, "a non-negative integer", &other)),
    }
}

fn invalid(field: &'static str, message: String) -> WireError {
    WireError::InvalidField { field, message }
}

fn expected(field: &'static str, wanted: &str, found: &Scalar<'_>) -> WireError {
    invalid(field, format!("expected {wanted}, found {}", found.kind()))
}

/// A serde_json failure as a [`WireError`], its position kept apart from the message.
pub(crate) fn malformed(err: serde_json::Error) -> WireError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    WireError::MalformedJson {
        line,
        column,
        message,
    }
}
