//! The price table: USD per million tokens for current OpenAI, Anthropic and Gemini models, held
//! as nano-dollars. Lookup is by exact name, then by the longest known prefix, so dated snapshots
//! (`gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`) price like their family while
//! `gpt-4o-mini` is never priced as `gpt-4o`.
//!
//! The table has versions: the built-in one ([`BUILT_IN_VERSION`]) and each import of LiteLLM's
//! price map (`providers::litellm`), which the store keeps so a restart prices as before. The
//! live prices ([`Prices`]) are the current table with the operator's config `pricing:` laid
//! over it, swapped whole when a table is imported; a provider key's own `pricing` beats both.
//! Every price found says what set it ([`Priced::version`]), which the step records.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::PriceOverride;
use crate::money::UsdNanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: UsdNanos,
    pub output: UsdNanos,
    pub cached_input: Option<UsdNanos>,
}

impl Price {
    fn of_override(o: &PriceOverride) -> Price {
        Price {
            input: nanos(o.input_per_million),
            output: nanos(o.output_per_million),
            cached_input: o.cached_input_per_million.map(nanos),
        }
    }
}

/// A price and what set it: a table version (`builtin-2026-12`, `litellm-<hash>`), `config`
/// for the operator's `pricing:`, or `key:<provider key id>` for a key's own prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub price: Price,
    pub version: Arc<str>,
}

/// The version of the table compiled into this build.
pub const BUILT_IN_VERSION: &str = "builtin-2026-12";

/// What a price set by the config's `pricing:` records as its version.
pub const CONFIG_VERSION: &str = "config";

/// (model, input, output, cached input) in USD per million tokens.
const BUILT_IN: &[(&str, f64, f64, Option<f64>)] = &[
    ("gpt-5", 1.25, 10.0, Some(0.125)),
    ("gpt-5-mini", 0.25, 2.0, Some(0.025)),
    ("gpt-5-nano", 0.05, 0.40, Some(0.005)),
    ("gpt-4.1", 2.0, 8.0, Some(0.50)),
    ("gpt-4.1-mini", 0.40, 1.60, Some(0.10)),
    ("gpt-4.1-nano", 0.10, 0.40, Some(0.025)),
    ("gpt-4o", 2.50, 10.0, Some(1.25)),
    ("gpt-4o-mini", 0.15, 0.60, Some(0.075)),
    ("gpt-4-turbo", 10.0, 30.0, None),
    ("gpt-3.5-turbo", 0.50, 1.50, None),
    ("o1", 15.0, 60.0, Some(7.50)),
    ("o1-mini", 1.10, 4.40, Some(0.55)),
    ("o3", 2.0, 8.0, Some(0.50)),
    ("o3-mini", 1.10, 4.40, Some(0.55)),
    ("o4-mini", 1.10, 4.40, Some(0.275)),
    ("claude-opus-4-5", 5.0, 25.0, Some(0.50)),
    ("claude-opus-4-1", 15.0, 75.0, Some(1.50)),
    ("claude-opus-4", 15.0, 75.0, Some(1.50)),
    ("claude-sonnet-4-5", 3.0, 15.0, Some(0.30)),
    ("claude-sonnet-4", 3.0, 15.0, Some(0.30)),
    ("claude-haiku-4-5", 1.0, 5.0, Some(0.10)),
    ("claude-3-7-sonnet", 3.0, 15.0, Some(0.30)),
    ("claude-3-5-sonnet", 3.0, 15.0, Some(0.30)),
    ("claude-3-5-haiku", 0.80, 4.0, Some(0.08)),
    ("claude-3-haiku", 0.25, 1.25, Some(0.03)),
    ("claude-3-opus", 15.0, 75.0, Some(1.50)),
    // Gemini: the prices of prompts up to 200k tokens; cached input is the context-cache read.
    ("gemini-2.5-pro", 1.25, 10.0, Some(0.125)),
    ("gemini-2.5-flash", 0.30, 2.50, Some(0.03)),
    ("gemini-2.5-flash-lite", 0.10, 0.40, Some(0.01)),
    ("gemini-2.0-flash", 0.10, 0.40, Some(0.025)),
];

fn nanos(usd_per_million: f64) -> UsdNanos {
    UsdNanos::from_usd(usd_per_million).unwrap_or(UsdNanos::ZERO)
}

/// The entry of `map` for `model`: its exact name, else (after dropping a `provider/` prefix)
/// the exact bare name or the longest known name that prefixes it at a `-` boundary.
fn find<'a, V>(map: &'a BTreeMap<String, V>, model: &str) -> Option<&'a V> {
    if let Some(value) = map.get(model) {
        return Some(value);
    }
    let model = model.rsplit_once('/').map_or(model, |(_, m)| m);
    if let Some(value) = map.get(model) {
        return Some(value);
    }
    map.range::<str, _>((Bound::Unbounded, Bound::Included(model)))
        .rev()
        .take_while(|(name, _)| model.as_bytes().first() == name.as_bytes().first())
        .filter(|(name, _)| {
            model
                .strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|(name, _)| name.len())
        .map(|(_, value)| value)
}

/// Where a table came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    BuiltIn,
    LiteLlm,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::BuiltIn => "built-in",
            PriceSource::LiteLlm => "litellm",
        }
    }

    pub fn parse(text: &str) -> Option<PriceSource> {
        match text {
            "built-in" => Some(PriceSource::BuiltIn),
            "litellm" => Some(PriceSource::LiteLlm),
            _ => None,
        }
    }
}

/// One version of the price table.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    pub version: Arc<str>,
    pub source: PriceSource,
    /// `None` for the built-in table.
    pub imported_at_ms: Option<i64>,
    prices: BTreeMap<String, Price>,
}

/// A stored price, in nano-dollars per million tokens.
#[derive(Serialize, Deserialize)]
struct StoredPrice {
    input: i64,
    output: i64,
    cached_input: Option<i64>,
}

impl PriceTable {
    pub fn built_in() -> PriceTable {
        let prices = BUILT_IN
            .iter()
            .map(|&(model, input, output, cached)| {
                let price = Price {
                    input: nanos(input),
                    output: nanos(output),
                    cached_input: cached.map(nanos),
                };
                (model.to_owned(), price)
            })
            .collect();
        PriceTable {
            version: Arc::from(BUILT_IN_VERSION),
            source: PriceSource::BuiltIn,
            imported_at_ms: None,
            prices,
        }
    }

    /// The built-in table with `imported` replacing the prices of the models it names and
    /// adding the others.
    pub fn imported(
        version: &str,
        imported: BTreeMap<String, Price>,
        imported_at_ms: i64,
    ) -> PriceTable {
        let mut table = PriceTable::built_in();
        table.prices.extend(imported);
        table.version = Arc::from(version);
        table.source = PriceSource::LiteLlm;
        table.imported_at_ms = Some(imported_at_ms);
        table
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// The table's own price for `model` (without config or key overrides).
    pub fn get(&self, model: &str) -> Option<Price> {
        find(&self.prices, model).copied()
    }

    /// The prices as the store keeps them: `{model: {input, output, cached_input}}`.
    pub fn prices_json(&self) -> String {
        let stored: BTreeMap<&str, StoredPrice> = self
            .prices
            .iter()
            .map(|(model, p)| {
                let price = StoredPrice {
                    input: p.input.0,
                    output: p.output.0,
                    cached_input: p.cached_input.map(|c| c.0),
                };
                (model.as_str(), price)
            })
            .collect();
        serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned())
    }

    /// A table the store kept (`prices_json`'s output).
    pub fn from_stored(
        version: &str,
        source: &str,
        imported_at_ms: i64,
        prices: &str,
    ) -> Result<PriceTable, String> {
        let source = PriceSource::parse(source).ok_or_else(|| format!("source {source:?}"))?;
        let stored: BTreeMap<String, StoredPrice> =
            serde_json::from_str(prices).map_err(|e| format!("prices: {e}"))?;
        let prices = stored
            .into_iter()
            .map(|(model, p)| {
                let price = Price {
                    input: UsdNanos(p.input),
                    output: UsdNanos(p.output),
                    cached_input: p.cached_input.map(UsdNanos),
                };
                (model, price)
            })
            .collect();
        Ok(PriceTable {
            version: Arc::from(version),
            source,
            imported_at_ms: Some(imported_at_ms),
            prices,
        })
    }
}

/// A provider key's own prices, by model or `*` for any model the key serves: for a
/// self-hosted endpoint no table knows, or a negotiated rate.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPrices {
    version: Arc<str>,
    prices: BTreeMap<String, Price>,
}

impl KeyPrices {
    /// `None` when the key sets no price.
    pub fn new(key_id: &str, pricing: &BTreeMap<String, PriceOverride>) -> Option<KeyPrices> {
        if pricing.is_empty() {
            return None;
        }
        let prices = pricing
            .iter()
            .map(|(model, o)| (model.clone(), Price::of_override(o)))
            .collect();
        Some(KeyPrices {
            version: Arc::from(format!("key:{key_id}")),
            prices,
        })
    }

    fn lookup(&self, model: &str) -> Option<Priced> {
        let price = find(&self.prices, model).or_else(|| self.prices.get("*"))?;
        Some(Priced {
            price: *price,
            version: self.version.clone(),
        })
    }
}

/// The current table with the config overrides laid over it: one map, so the longest-name
/// rule applies across both (a config `gpt-4o` never prices `gpt-4o-mini`).
#[derive(Debug)]
struct Live {
    table: Arc<PriceTable>,
    merged: BTreeMap<String, Priced>,
}

impl Live {
    fn new(table: PriceTable, config: &BTreeMap<String, Price>) -> Live {
        let mut merged: BTreeMap<String, Priced> = table
            .prices
            .iter()
            .map(|(model, price)| {
                let priced = Priced {
                    price: *price,
                    version: table.version.clone(),
                };
                (model.clone(), priced)
            })
            .collect();
        let config_version: Arc<str> = Arc::from(CONFIG_VERSION);
        for (model, price) in config {
            let priced = Priced {
                price: *price,
                version: config_version.clone(),
            };
            merged.insert(model.clone(), priced);
        }
        Live {
            table: Arc::new(table),
            merged,
        }
    }
}

/// The gateway's prices. A call reads them once per attempt (a read lock held for one map
/// lookup); an import swaps the whole merged map, so a call never sees half a table.
#[derive(Debug)]
pub struct Prices {
    config: BTreeMap<String, Price>,
    live: RwLock<Arc<Live>>,
}

impl Prices {
    pub fn new(config: &BTreeMap<String, PriceOverride>, table: PriceTable) -> Prices {
        let config = config
            .iter()
            .map(|(model, o)| (model.clone(), Price::of_override(o)))
            .collect();
        let live = Live::new(table, &config);
        Prices {
            config,
            live: RwLock::new(Arc::new(live)),
        }
    }

    fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The price of `model` on a key with `key` prices: the key's > the config's > the table's;
    /// `None` when the model is unpriced.
    pub fn lookup(&self, key: Option<&KeyPrices>, model: &str) -> Option<Priced> {
        if let Some(priced) = key.and_then(|k| k.lookup(model)) {
            return Some(priced);
        }
        let live = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        find(&live.merged, model).cloned()
    }

    /// The table in use.
    pub fn table(&self) -> Arc<PriceTable> {
        self.live().table.clone()
    }

    /// Makes `table` the one every following lookup uses.
    pub fn swap(&self, table: PriceTable) {
        let live = Arc::new(Live::new(table, &self.config));
        *self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = live;
    }

    /// Every model with a price, for `GET /v1/models` when no policy narrows the list.
    pub fn model_names(&self) -> Vec<String> {
        self.live().merged.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_million(input: f64, output: f64) -> PriceOverride {
        PriceOverride {
            input_per_million: input,
            output_per_million: output,
            cached_input_per_million: None,
        }
    }

    fn usd(dollars: i64) -> UsdNanos {
        UsdNanos(dollars * 1_000_000_000)
    }

    /// The input price and the version that set it.
    fn input(prices: &Prices, key: Option<&KeyPrices>, model: &str) -> Option<(UsdNanos, String)> {
        prices
            .lookup(key, model)
            .map(|p| (p.price.input, p.version.to_string()))
    }

    #[test]
    fn lookup_prefers_the_longest_family() {
        let prices = Prices::new(&BTreeMap::new(), PriceTable::built_in());
        let input = |m: &str| prices.lookup(None, m).map(|p| p.price.input);
        assert_eq!(input("gpt-4o"), Some(UsdNanos(2_500_000_000)));
        assert_eq!(input("gpt-4o-mini"), Some(UsdNanos(150_000_000)));
        assert_eq!(input("gpt-4o-2024-08-06"), Some(UsdNanos(2_500_000_000)));
        assert_eq!(input("gpt-4o-mini-2024-07-18"), Some(UsdNanos(150_000_000)));
        assert_eq!(
            input("claude-sonnet-4-20250514"),
            Some(UsdNanos(3_000_000_000))
        );
        assert_eq!(
            input("anthropic/claude-opus-4-5"),
            Some(UsdNanos(5_000_000_000))
        );
        assert_eq!(input("gemini-2.5-flash"), Some(UsdNanos(300_000_000)));
        assert_eq!(input("gemini-2.5-flash-lite"), Some(UsdNanos(100_000_000)));
        assert_eq!(input("gpt-4omega"), None);
        assert_eq!(input("llama-3"), None);
        assert_eq!(
            prices.lookup(None, "gpt-4o").map(|p| p.version.to_string()),
            Some(BUILT_IN_VERSION.to_owned())
        );
    }

    #[test]
    fn config_overrides_replace_and_extend_the_table_by_name() {
        let mut config = BTreeMap::new();
        config.insert("gpt-4o".to_owned(), per_million(1.0, 2.0));
        config.insert("my-model".to_owned(), per_million(3.0, 4.0));
        let prices = Prices::new(&config, PriceTable::built_in());
        assert_eq!(
            input(&prices, None, "gpt-4o"),
            Some((usd(1), "config".into()))
        );
        assert_eq!(
            input(&prices, None, "gpt-4o-2024-08-06"),
            Some((usd(1), "config".into()))
        );
        assert_eq!(
            input(&prices, None, "my-model"),
            Some((usd(3), "config".into()))
        );
        // The table's longer name still wins over a config family name.
        assert_eq!(
            input(&prices, None, "gpt-4o-mini"),
            Some((UsdNanos(150_000_000), BUILT_IN_VERSION.into()))
        );
    }

    #[test]
    fn a_key_price_beats_config_and_table_and_star_covers_the_rest() {
        let mut config = BTreeMap::new();
        config.insert("gpt-4o".to_owned(), per_million(1.0, 2.0));
        let prices = Prices::new(&config, PriceTable::built_in());
        let mut own = BTreeMap::new();
        own.insert("gpt-4o".to_owned(), per_million(7.0, 8.0));
        own.insert("*".to_owned(), per_million(5.0, 6.0));
        let key = KeyPrices::new("pk_1", &own);
        let key = key.as_ref();
        assert_eq!(
            input(&prices, key, "gpt-4o"),
            Some((usd(7), "key:pk_1".into()))
        );
        assert_eq!(
            input(&prices, key, "gpt-4o-2024-08-06"),
            Some((usd(7), "key:pk_1".into()))
        );
        assert_eq!(
            input(&prices, key, "meta-llama/Llama-3.1-8B-Instruct"),
            Some((usd(5), "key:pk_1".into()))
        );
        // Without `*`, a model the key does not name falls through to config and table.
        let mut named = BTreeMap::new();
        named.insert("Llama-3.1-8B-Instruct".to_owned(), per_million(9.0, 9.0));
        let key = KeyPrices::new("pk_2", &named);
        let key = key.as_ref();
        assert_eq!(
            input(&prices, key, "meta-llama/Llama-3.1-8B-Instruct"),
            Some((usd(9), "key:pk_2".into()))
        );
        assert_eq!(
            input(&prices, key, "gpt-4o"),
            Some((usd(1), "config".into()))
        );
        assert_eq!(
            input(&prices, key, "claude-3-opus"),
            Some((usd(15), BUILT_IN_VERSION.into()))
        );
        assert_eq!(KeyPrices::new("pk_3", &BTreeMap::new()), None);
    }

    #[test]
    fn a_swapped_table_prices_every_following_lookup_and_config_still_wins() {
        let mut config = BTreeMap::new();
        config.insert("gpt-4o".to_owned(), per_million(1.0, 2.0));
        let prices = Prices::new(&config, PriceTable::built_in());
        let before = prices.table();
        let mut imported = BTreeMap::new();
        let price = |dollars| Price {
            input: usd(dollars),
            output: usd(dollars),
            cached_input: None,
        };
        imported.insert("gpt-4o-mini".to_owned(), price(2));
        imported.insert("gpt-4o".to_owned(), price(3));
        imported.insert("mistral-large".to_owned(), price(4));
        prices.swap(PriceTable::imported("litellm-abc", imported, 1_000));
        assert_eq!(prices.table().version.as_ref(), "litellm-abc");
        assert_eq!(before.version.as_ref(), BUILT_IN_VERSION);
        assert_eq!(
            input(&prices, None, "gpt-4o-mini"),
            Some((usd(2), "litellm-abc".into()))
        );
        assert_eq!(
            input(&prices, None, "mistral-large"),
            Some((usd(4), "litellm-abc".into()))
        );
        assert_eq!(
            input(&prices, None, "gpt-4o"),
            Some((usd(1), "config".into()))
        );
        // Built-in models the import does not name keep their price, under the new version.
        assert_eq!(
            input(&prices, None, "claude-3-opus"),
            Some((usd(15), "litellm-abc".into()))
        );
        assert!(prices.model_names().contains(&"mistral-large".to_owned()));
    }

    #[test]
    fn a_stored_table_reads_back_the_same() -> Result<(), String> {
        let mut imported = BTreeMap::new();
        let price = Price {
            input: UsdNanos(1),
            output: UsdNanos(2),
            cached_input: Some(UsdNanos(3)),
        };
        imported.insert("x-model".to_owned(), price);
        let table = PriceTable::imported("litellm-abc", imported, 42);
        let back = PriceTable::from_stored("litellm-abc", "litellm", 42, &table.prices_json())?;
        assert_eq!(back, table);
        assert!(PriceTable::from_stored("v", "elsewhere", 1, "{}").is_err());
        assert!(PriceTable::from_stored("v", "litellm", 1, "[]").is_err());
        Ok(())
    }
}
