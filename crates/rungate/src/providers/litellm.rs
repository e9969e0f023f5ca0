//! Reads LiteLLM's MIT-licensed price map (`model_prices_and_context_window.json`): an object
//! of model name → `{input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
//! litellm_provider, mode, ...}` in USD per token, plus a `sample_spec` entry documenting the
//! shape. Only chat and responses models with both costs are kept; a `provider/` prefix that
//! names the entry's own `litellm_provider` is dropped (`gemini/gemini-2.5-pro` →
//! `gemini-2.5-pro`), and the provider's unprefixed entry wins over a prefixed one. Entries of
//! other modes (embeddings, images) and names behind other prefixes (routers, clouds) are left
//! out; entries that cannot be read are counted as skipped.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::pricing::Price;
use crate::money::UsdNanos;

/// What an import read from the file.
#[derive(Debug, PartialEq)]
pub struct Imported {
    /// `litellm-` and the first 12 hex digits of the file's SHA-256.
    pub version: String,
    pub prices: BTreeMap<String, Price>,
    /// Entries that claim to be a chat model but whose prices cannot be read.
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error(
        "the file is not a LiteLLM price map: expected a JSON object of model name → {{\"input_cost_per_token\", \"output_cost_per_token\", \"mode\", ...}}"
    )]
    NotAMap,
    #[error(
        "the file has no chat model with input_cost_per_token and output_cost_per_token: is it LiteLLM's model_prices_and_context_window.json?"
    )]
    NoModels,
}

/// The modes whose entries price the calls Rungate proxies.
const MODES: &[&str] = &["chat", "responses"];

pub fn parse(bytes: &[u8]) -> Result<Imported, ImportError> {
    let map = match serde_json::from_slice::<Value>(bytes)? {
        Value::Object(map) => map,
        _ => return Err(ImportError::NotAMap),
    };
    let mut bare = BTreeMap::new();
    let mut stripped = BTreeMap::new();
    let mut skipped = 0;
    for (name, entry) in &map {
        if name == "sample_spec" {
            continue;
        }
        let Value::Object(entry) = entry else {
            skipped += 1;
            continue;
        };
        match entry.get("mode") {
            Some(Value::String(mode)) if MODES.contains(&mode.as_str()) => {}
            Some(Value::String(_)) | None => continue,
            Some(_) => {
                skipped += 1;
                continue;
            }
        }
        let Some(price) = price_of(entry) else {
            skipped += 1;
            continue;
        };
        match name.split_once('/') {
            None => {
                bare.insert(name.clone(), price);
            }
            Some((prefix, model)) => {
                let own = entry.get("litellm_provider").and_then(Value::as_str) == Some(prefix);
                if own && !model.contains('/') && !model.is_empty() {
                    stripped.entry(model.to_owned()).or_insert(price);
                }
            }
        }
    }
    stripped.extend(bare);
    if stripped.is_empty() {
        return Err(ImportError::NoModels);
    }
    let digest = hex::encode(Sha256::digest(bytes));
    Ok(Imported {
        version: format!("litellm-{}", &digest[..12]),
        prices: stripped,
        skipped,
    })
}

/// Per-token USD costs as nano-dollars per million tokens; `None` when a cost is missing,
/// not a number, negative or absurd.
fn price_of(entry: &serde_json::Map<String, Value>) -> Option<Price> {
    let per_million = |field: &str| -> Option<Option<UsdNanos>> {
        match entry.get(field) {
            None | Some(Value::Null) => Some(None),
            Some(value) => value
                .as_f64()
                .and_then(|usd| UsdNanos::from_usd(usd * 1_000_000.0))
                .map(Some),
        }
    };
    Some(Price {
        input: per_million("input_cost_per_token")??,
        output: per_million("output_cost_per_token")??,
        cached_input: per_million("cache_read_input_token_cost")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt in the shape of the real file.
    const EXCERPT: &str = r#"{
        "sample_spec": {
            "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it.",
            "input_cost_per_token": 0.0000,
            "output_cost_per_token": 0.000,
            "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
            "mode": "one of: chat, embedding, completion, image_generation, audio_transcription, audio_speech, image_generation, moderation, rerank",
            "supports_function_calling": true
        },
        "gpt-4o": {
            "max_tokens": 16384, "max_input_tokens": 128000, "max_output_tokens": 16384,
            "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-06,
            "litellm_provider": "openai", "mode": "chat", "supports_vision": true
        },
        "azure/gpt-4o": {
            "input_cost_per_token": 5e-06, "output_cost_per_token": 1.5e-05,
            "litellm_provider": "azure", "mode": "chat"
        },
        "gemini/gemini-2.5-pro": {
            "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 3.125e-07,
            "litellm_provider": "gemini", "mode": "chat"
        },
        "openrouter/openai/gpt-4o-mini": {
            "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
            "litellm_provider": "openrouter", "mode": "chat"
        },
        "o3-pro": {
            "input_cost_per_token": 2e-05, "output_cost_per_token": 8e-05,
            "litellm_provider": "openai", "mode": "responses"
        },
        "text-embedding-3-small": {
            "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0,
            "litellm_provider": "openai", "mode": "embedding"
        },
        "broken-model": {
            "input_cost_per_token": "cheap", "output_cost_per_token": 1e-06,
            "litellm_provider": "openai", "mode": "chat"
        },
        "half-priced": {
            "input_cost_per_token": 1e-06, "litellm_provider": "openai", "mode": "chat"
        },
        "not-an-object": 42
    }"#;

    fn usd_per_million(nanos: i64) -> f64 {
        nanos as f64 / 1e9
    }

    #[test]
    fn reads_chat_models_strips_own_prefixes_and_counts_what_it_cannot_read()
    -> Result<(), ImportError> {
        let imported = parse(EXCERPT.as_bytes())?;
        let names: Vec<&str> = imported.prices.keys().map(String::as_str).collect();
        assert_eq!(names, ["gemini-2.5-pro", "gpt-4o", "o3-pro"]);
        let gpt = imported.prices["gpt-4o"];
        assert_eq!(usd_per_million(gpt.input.0), 2.5);
        assert_eq!(usd_per_million(gpt.output.0), 10.0);
        assert_eq!(gpt.cached_input, Some(UsdNanos(1_250_000_000)));
        // The provider's own unprefixed entry wins over Azure's.
        assert_eq!(
            imported.prices["gemini-2.5-pro"].cached_input,
            Some(UsdNanos(312_500_000))
        );
        assert_eq!(imported.prices["o3-pro"].cached_input, None);
        assert_eq!(imported.skipped, 3);
        let digest = hex::encode(Sha256::digest(EXCERPT.as_bytes()));
        assert_eq!(imported.version, format!("litellm-{}", &digest[..12]));
        assert_eq!(imported.version.len(), "litellm-".len() + 12);
        Ok(())
    }

    #[test]
    fn a_file_that_is_not_a_price_map_is_refused_with_a_reason() {
        let refused = |body: &str| parse(body.as_bytes()).map_err(|e| e.to_string()).err();
        assert!(refused("not json").is_some_and(|m| m.contains("not JSON")));
        assert!(refused("[1, 2]").is_some_and(|m| m.contains("not a LiteLLM price map")));
        assert!(refused(r#"{"sample_spec": {}}"#).is_some_and(|m| m.contains("no chat model")));
        assert!(
            refused(r#"{"policies": {"allowed_models": ["gpt-4o"]}}"#)
                .is_some_and(|m| m.contains("no chat model"))
        );
    }
}
