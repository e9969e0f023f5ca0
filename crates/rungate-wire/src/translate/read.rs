//! Readers over parsed JSON that say which member was wrong.
//!
//! Translation must fail with the member's path (so the client can fix its request), and must
//! treat an absent member and `null` alike, as the providers do. Answers are read leniently
//! instead: an upstream that said something odd still gets its text through.
//!
//! A tool declaration is the one shape all four dialects share member for member (`name`,
//! `description`, a schema under a key of the dialect's own), so it is read and written here.

use serde_json::{Map, Number, Value};

use super::TranslateError;
use super::ir::Tool;

pub(crate) type Object = Map<String, Value>;

/// The member, with `null` read as absent.
pub(crate) fn get<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// A Gemini member by its camelCase name, or the snake_case one the REST API also accepts.
pub(crate) fn get_camel<'a>(value: &'a Value, camel: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    if let Some(found) = get(object, camel) {
        return Some(found);
    }
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    get(object, &snake)
}

pub(crate) fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// An optional array member; absent and `null` are empty.
pub(crate) fn array<'a>(
    value: Option<&'a Value>,
    field: &str,
) -> Result<&'a [Value], TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(TranslateError::invalid(field, "expected an array")),
    }
}

pub(crate) fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Object, TranslateError> {
    value
        .as_object()
        .ok_or_else(|| TranslateError::invalid(field, "expected an object"))
}

/// A required object member, and its path for the errors about what it holds.
pub(crate) fn required_object<'a>(
    parent: &'a Object,
    key: &str,
    at: &str,
) -> Result<(&'a Object, String), TranslateError> {
    let member_at = path(at, key);
    let member =
        get(parent, key).ok_or_else(|| TranslateError::invalid(&member_at, "is required"))?;
    Ok((object(member, &member_at)?, member_at))
}

pub(crate) fn string<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a str, TranslateError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(TranslateError::invalid(field, "expected a string")),
        None => Err(TranslateError::invalid(field, "is required")),
    }
}

pub(crate) fn opt_string(
    value: Option<&Value>,
    field: &str,
) -> Result<Option<String>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TranslateError::invalid(field, "expected a string")),
    }
}

pub(crate) fn opt_number(
    value: Option<&Value>,
    field: &str,
) -> Result<Option<Number>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.clone())),
        Some(_) => Err(TranslateError::invalid(field, "expected a number")),
    }
}

pub(crate) fn opt_u64(value: Option<&Value>, field: &str) -> Result<Option<u64>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => Ok(Some(n)),
            None => Err(TranslateError::invalid(
                field,
                "expected a non-negative integer",
            )),
        },
        Some(_) => Err(TranslateError::invalid(field, "expected an integer")),
    }
}

pub(crate) fn opt_bool(value: Option<&Value>, field: &str) -> Result<Option<bool>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TranslateError::invalid(field, "expected a boolean")),
    }
}

/// A stop list: one string or an array of strings.
pub(crate) fn stop_list(value: Option<&Value>, field: &str) -> Result<Vec<String>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(Some(item), &index(field, i)).map(str::to_owned))
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            field,
            "expected a string or an array",
        )),
    }
}

/// A token count in an answer: anything but a non-negative integer reads as zero.
pub(crate) fn count(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_u64).unwrap_or(0)
}

/// A lenient string in an answer.
pub(crate) fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// Arguments that arrived as an object (Anthropic `input`, Gemini `args`), as JSON text.
pub(crate) fn arguments_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A tool declaration's `name` and `description`, and its argument `schema` (found under the
/// dialect's own key; absent, any object is allowed).
pub(crate) fn declared_tool(
    declaration: &Object,
    at: &str,
    schema: Option<&Value>,
) -> Result<Tool, TranslateError> {
    Ok(Tool {
        name: string(get(declaration, "name"), &path(at, "name"))?.to_owned(),
        description: opt_string(get(declaration, "description"), &path(at, "description"))?,
        parameters: schema.cloned().unwrap_or_else(empty_schema),
    })
}

/// The schema of a tool that declared none: an object with any members.
fn empty_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// A tool declaration's members, for [`build`]: the schema goes under `schema_key`.
pub(crate) fn declaration_members(
    tool: &Tool,
    schema_key: &'static str,
) -> [(&'static str, Option<Value>); 3] {
    [
        ("name", Some(Value::from(tool.name.as_str()))),
        ("description", tool.description.as_deref().map(Value::from)),
        (schema_key, Some(tool.parameters.clone())),
    ]
}

/// Builds an object from members, skipping `None`s.
pub(crate) fn build<'a>(members: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Value {
    let mut object = Object::new();
    for (key, value) in members {
        if let Some(value) = value {
            object.insert(key.to_owned(), value);
        }
    }
    Value::Object(object)
}

pub(crate) fn number(n: &Number) -> Value {
    Value::Number(n.clone())
}
