//! Golden tests for `rungate_wire::translate`: every JSON fixture under this directory is run
//! and compared structurally with its `expected` value.
//!
//! Layout: `<category>/<from>_to_<to>/<case>.json`, category one of `requests`, `responses`,
//! `streams`, `errors`. A category or direction directory without fixtures fails the run, so
//! fixtures cannot vanish unnoticed. Every stream fixture is also fed byte by byte, which must
//! give the same events as feeding its chunks.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::fs;
use std::path::{Path, PathBuf};

use rungate_wire::{
    Dialect, RequestOptions, ResponseOptions, StreamTranslator, translate_error, translate_request,
    translate_response,
};
use serde_json::{Value, json};

const CATEGORIES: [&str; 4] = ["requests", "responses", "streams", "errors"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/translate")
}

fn dialect(name: &str) -> Dialect {
    match name {
        "openai" => Dialect::OpenAi,
        "anthropic" => Dialect::Anthropic,
        "gemini" => Dialect::Gemini,
        "responses" => Dialect::Responses,
        other => panic!("unknown dialect `{other}`"),
    }
}

/// The SSE events of a stream, each `{"event": name, "data": json}` (`event` only when named;
/// `data` a string when it is not JSON, e.g. `[DONE]`).
fn events(sse: &[u8]) -> Vec<Value> {
    let text = String::from_utf8(sse.to_vec()).expect("utf-8 output");
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = serde_json::Map::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                event.insert("event".into(), json!(name));
            } else if let Some(data) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(data).unwrap_or_else(|_| json!(data));
                event.insert("data".into(), data);
            }
        }
        out.push(Value::Object(event));
    }
    out
}

fn run_stream(
    from: Dialect,
    to: Dialect,
    chunks: &[Vec<u8>],
    opts: &ResponseOptions,
) -> (Vec<u8>, StreamTranslator) {
    let mut translator = StreamTranslator::new(from, to, opts);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&translator.push(chunk));
    }
    out.extend_from_slice(&translator.finish());
    (out, translator)
}

fn response_options(fixture: &Value) -> (String, u64) {
    let options = &fixture["options"];
    (
        options["model"].as_str().unwrap_or("m").to_owned(),
        options["created_unix"].as_u64().unwrap_or(1_700_000_000),
    )
}

/// Runs one fixture; `Err` carries what differs.
fn run(category: &str, from: Dialect, to: Dialect, fixture: &Value) -> Result<(), String> {
    let input = &fixture["input"];
    let actual: Value = match category {
        "requests" => {
            let options = &fixture["options"];
            let opts = RequestOptions {
                model: options["model"].as_str().unwrap_or("m"),
                default_max_tokens: options["default_max_tokens"].as_u64().unwrap_or(4096),
            };
            let body = serde_json::to_vec(input).unwrap();
            match translate_request(from, to, &body, &opts) {
                Ok(out) => {
                    serde_json::from_slice(&out).map_err(|e| format!("output is not JSON: {e}"))?
                }
                Err(err) => json!({"error": format!("{err:?}"), "field": err.field()}),
            }
        }
        "responses" => {
            let (model, created) = response_options(fixture);
            let opts = ResponseOptions {
                model: &model,
                created_unix: created,
            };
            let body = serde_json::to_vec(input).unwrap();
            match translate_response(from, to, &body, &opts) {
                Ok(out) => {
                    serde_json::from_slice(&out).map_err(|e| format!("output is not JSON: {e}"))?
                }
                Err(err) => json!({"error": format!("{err:?}"), "field": err.field()}),
            }
        }
        "streams" => {
            let (model, created) = response_options(fixture);
            let opts = ResponseOptions {
                model: &model,
                created_unix: created,
            };
            let chunks: Vec<Vec<u8>> = match input {
                Value::String(s) => vec![s.as_bytes().to_vec()],
                Value::Array(parts) => parts
                    .iter()
                    .map(|p| p.as_str().unwrap().as_bytes().to_vec())
                    .collect(),
                other => {
                    return Err(format!(
                        "stream input must be a string or a list, not {other}"
                    ));
                }
            };
            let (whole, translator) = run_stream(from, to, &chunks, &opts);
            let bytes: Vec<Vec<u8>> = chunks.concat().into_iter().map(|b| vec![b]).collect();
            let (split, _) = run_stream(from, to, &bytes, &opts);
            if whole != split {
                return Err(format!(
                    "byte-by-byte push differs from chunked push:\n{}\n---\n{}",
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&split)
                ));
            }
            let usage = translator.usage().map(|u| {
                json!({"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "cached_input_tokens": u.cached_input_tokens})
            });
            json!({
                "events": events(&whole),
                "completed": translator.completed(),
                "usage": usage,
                "upstream_error": translator.upstream_error(),
            })
        }
        "errors" => {
            let status = u16::try_from(fixture["status"].as_u64().unwrap_or(500)).unwrap();
            let body = match input {
                Value::String(s) => s.as_bytes().to_vec(),
                other => serde_json::to_vec(other).unwrap(),
            };
            serde_json::from_slice(&translate_error(from, to, status, &body))
                .map_err(|e| format!("output is not JSON: {e}"))?
        }
        other => return Err(format!("unknown category {other}")),
    };
    let expected = &fixture["expected"];
    if &actual == expected {
        Ok(())
    } else {
        Err(diff(expected, &actual))
    }
}

/// The first differing path, then both values in full.
fn diff(expected: &Value, actual: &Value) -> String {
    fn first(path: &str, e: &Value, a: &Value) -> Option<String> {
        match (e, a) {
            (Value::Object(eo), Value::Object(ao)) => {
                for key in eo.keys().chain(ao.keys()) {
                    let p = format!("{path}.{key}");
                    match (eo.get(key), ao.get(key)) {
                        (Some(x), Some(y)) => {
                            if let Some(found) = first(&p, x, y) {
                                return Some(found);
                            }
                        }
                        (x, y) => return Some(format!("{p}: expected {x:?}, got {y:?}")),
                    }
                }
                None
            }
            (Value::Array(ea), Value::Array(aa)) => {
                for (i, (x, y)) in ea.iter().zip(aa).enumerate() {
                    if let Some(found) = first(&format!("{path}[{i}]"), x, y) {
                        return Some(found);
                    }
                }
                (ea.len() != aa.len())
                    .then(|| format!("{path}: expected {} items, got {}", ea.len(), aa.len()))
            }
            _ => (e != a).then(|| format!("{path}: expected {e}, got {a}")),
        }
    }
    format!(
        "first difference at {}\nexpected: {}\nactual:   {}",
        first("$", expected, actual).unwrap_or_default(),
        serde_json::to_string_pretty(expected).unwrap(),
        serde_json::to_string_pretty(actual).unwrap()
    )
}

#[test]
fn every_translation_fixture_matches_its_expected_output() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for category in CATEGORIES {
        let dir = root().join(category);
        let mut pairs: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        pairs.sort();
        if pairs.is_empty() {
            failures.push(format!("{}: no direction directories", dir.display()));
        }
        for pair in pairs {
            let name = pair.file_name().unwrap().to_string_lossy().into_owned();
            let (from, to) = name
                .split_once("_to_")
                .unwrap_or_else(|| panic!("{name}: expected <from>_to_<to>"));
            let (from, to) = (dialect(from), dialect(to));
            let mut files: Vec<PathBuf> = fs::read_dir(&pair)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            if files.is_empty() {
                failures.push(format!("{}: no fixtures", pair.display()));
            }
            for file in files {
                ran += 1;
                let text = fs::read_to_string(&file).unwrap();
                let fixture: Value = match serde_json::from_str(&text) {
                    Ok(f) => f,
                    Err(e) => {
                        failures.push(format!("{}: not JSON: {e}", file.display()));
                        continue;
                    }
                };
                if let Err(why) = run(category, from, to, &fixture) {
                    failures.push(format!("{}:\n{why}", file.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} fixtures failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
