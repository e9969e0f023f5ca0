//! A price the operator sets for one model in `pricing:`, replacing the price table's entry; a
//! provider key's own `pricing` uses the same shape and checks.

use serde::{Deserialize, Serialize};

/// USD per million tokens, as providers publish them.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input_per_million: f64,
    pub output_per_million: f64,
    pub cached_input_per_million: Option<f64>,
}

impl PriceOverride {
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("input_per_million", Some(self.input_per_million)),
            ("output_per_million", Some(self.output_per_million)),
            ("cached_input_per_million", self.cached_input_per_million),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!("{name} must be a non-negative number, got {v}"));
                }
            }
        }
        Ok(())
    }
}
