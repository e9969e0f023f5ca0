//! The price table: USD per million tokens for current OpenAI and Anthropic models, held as
//! nano-dollars. Lookup is by exact name, then by the longest known prefix, so dated snapshots
//! (`gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`) price like their family while
//! `gpt-4o-mini` is never priced as `gpt-4o`. Operators override or extend it in config.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::config::PriceOverride;
use crate::money::UsdNanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: UsdNanos,
    pub output: UsdNanos,
    pub cached_input: Option<UsdNanos>,
}

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
];

#[derive(Clone, Debug)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

fn nanos(usd_per_million: f64) -> UsdNanos {
    UsdNanos::from_usd(usd_per_million).unwrap_or(UsdNanos::ZERO)
}

impl PriceTable {
    pub fn new(overrides: &BTreeMap<String, PriceOverride>) -> PriceTable {
        let mut prices: BTreeMap<String, Price> = BUILT_IN
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
        for (model, o) in overrides {
            let price = Price {
                input: nanos(o.input_per_million),
                output: nanos(o.output_per_million),
                cached_input: o.cached_input_per_million.map(nanos),
            };
            prices.insert(model.clone(), price);
        }
        PriceTable { prices }
    }

    /// Every model with a price, for `GET /v1/models` when no policy narrows the list.
    pub fn model_names(&self) -> Vec<String> {
        self.prices.keys().cloned().collect()
    }

    /// The price of `model`, ignoring a `provider/` prefix; `None` when the model is unpriced.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let model = model.rsplit_once('/').map_or(model, |(_, m)| m);
        if let Some(price) = self.prices.get(model) {
            return Some(*price);
        }
        // Longest known name that prefixes the model at a `-` boundary.
        self.prices
            .range::<str, _>((Bound::Unbounded, Bound::Included(model)))
            .rev()
            .take_while(|(name, _)| model.as_bytes().first() == name.as_bytes().first())
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_the_longest_family() {
        let table = PriceTable::new(&BTreeMap::new());
        let input = |m: &str| table.lookup(m).map(|p| p.input);
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
        assert_eq!(input("gpt-4omega"), None);
        assert_eq!(input("llama-3"), None);
    }

    #[test]
    fn overrides_replace_and_extend() {
        let mut overrides = BTreeMap::new();
        let price = PriceOverride {
            input_per_million: 1.0,
            output_per_million: 2.0,
            cached_input_per_million: None,
        };
        overrides.insert("gpt-4o".to_owned(), price);
        overrides.insert("my-model".to_owned(), price);
        let table = PriceTable::new(&overrides);
        assert_eq!(
            table.lookup("gpt-4o").map(|p| p.input),
            Some(UsdNanos(1_000_000_000))
        );
        assert_eq!(
            table.lookup("my-model").map(|p| p.output),
            Some(UsdNanos(2_000_000_000))
        );
    }
}
