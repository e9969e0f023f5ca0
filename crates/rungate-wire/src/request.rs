//! Facts about an incoming request body, read in one borrowed pass.
//!
//! Governance needs a handful of fields (model, stream, max tokens, declared tools, Rungate's own
//! `rungate` field) and a size estimate of the prompt. A Gemini body names neither its model nor
//! whether it streams: both are in the URL (`models/{model}:streamGenerateContent`), which the
//! gateway reads with [`GeminiPath`]; the facts then say an empty model and `stream: false`. Everything else is skipped without being
//! built, and the body itself is forwarded as received unless [`rewrite_request`] must change it.
//! Only the fields the gateway relies on are validated; unknown roles, fields and content part
//! types are the provider's business and never rejected here.

mod body_scan;
mod gemini_path;
mod rewrite;
#[cfg(test)]
mod tests;

pub use gemini_path::{GeminiMethod, GeminiPath};
pub use rewrite::{Rewrite, rewrite_request};

use serde::de::DeserializeSeed;

use crate::Dialect;
use crate::lenient::Scalar;
use body_scan::{BodyScan, BodySeed, Messages, RungateField};

/// What the gateway needs to know about a request before forwarding it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    /// Empty for Gemini, whose model is in the URL ([`GeminiPath`]).
    pub model: String,
    /// Always false for Gemini, where the URL's method decides ([`GeminiMethod::streams`]).
    pub stream: bool,
    /// OpenAI: `max_completion_tokens`, else `max_tokens`; Anthropic: `max_tokens`; Responses:
    /// `max_output_tokens`; Gemini: `generationConfig.maxOutputTokens`.
    pub max_output_tokens: Option<u64>,
    /// OpenAI: `stream_options.include_usage == true`; always false for the other dialects,
    /// whose streams always report usage.
    pub include_usage: bool,
    /// OpenAI `tools[].function.name` (and `custom.name`, legacy `functions[].name`);
    /// Anthropic `tools[].name`; Responses `tools[].name`, or the `type` of a built-in tool
    /// (`web_search`, `code_interpreter`, `mcp`, ...); Gemini
    /// `tools[].functionDeclarations[].name`, or the key of a built-in tool (`googleSearch`,
    /// `codeExecution`, ...).
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
/// types when present, because the gateway acts on them. Responses: `input` takes the place of
/// `messages` and may be a string, or absent (a follow-up on `previous_response_id` or a stored
/// prompt). Gemini: no `model`, and an array `contents` is required.
pub fn inspect_request(dialect: Dialect, body: &[u8]) -> Result<RequestFacts, WireError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let scan = BodySeed { dialect }
        .deserialize(&mut de)
        .map_err(malformed)?;
    de.end().map_err(malformed)?;
    facts_from_scan(dialect, scan)
}

fn facts_from_scan(dialect: Dialect, scan: BodyScan<'_>) -> Result<RequestFacts, WireError> {
    let model = match dialect {
        Dialect::Gemini => String::new(),
        Dialect::OpenAi | Dialect::Anthropic | Dialect::Responses => model_name(scan.model)?,
    };
    let message_chars = message_chars(dialect, scan.messages)?;
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
        Dialect::Anthropic => token_limit("max_tokens", scan.max_tokens)?,
        Dialect::Responses => token_limit("max_output_tokens", scan.max_output_tokens)?,
        Dialect::Gemini => token_limit("generationConfig.maxOutputTokens", scan.max_output_tokens)?,
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

/// The prompt member (`messages`; Responses `input`; Gemini `contents`); yields its prompt
/// characters. Required and an array, except Responses `input`: optional, a string or an array.
fn message_chars(dialect: Dialect, value: Option<Messages>) -> Result<usize, WireError> {
    let (field, wanted) = match dialect {
        Dialect::OpenAi | Dialect::Anthropic => ("messages", "an array"),
        Dialect::Gemini => ("contents", "an array"),
        Dialect::Responses => ("input", "a string or an array"),
    };
    let optional = dialect == Dialect::Responses;
    match value {
        None | Some(Messages::Null) if optional => Ok(0),
        None | Some(Messages::Null) => Err(WireError::MissingField(field)),
        Some(Messages::Text { chars }) if optional => Ok(chars),
        Some(Messages::Text { .. }) => {
            Err(invalid(field, format!("expected {wanted}, found a string")))
        }
        Some(Messages::Other(kind)) => {
            Err(invalid(field, format!("expected {wanted}, found {kind}")))
        }
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
