//! `/api/prices`: the price table in use, and importing LiteLLM's price map as a new table
//! version. An import is stored before it is swapped in, so the table a step names as its
//! `price_version` is the table a restart prices with.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Params, created, item};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::money::UsdNanos;
use crate::providers::litellm;
use crate::providers::pricing::{PriceSource, PriceTable, Priced};
use crate::run::{now_ms, rfc3339};
use crate::store::{PriceTableRecord, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceQuery {
    /// A model to price, as a call naming it would be priced (table and config; no key).
    model: Option<String>,
}

/// `POST /api/prices/import`: the body is LiteLLM's `model_prices_and_context_window.json`.
#[utoipa::path(post, path = "/prices/import", tag = "admin", request_body(content = String, description = "LiteLLM's model_prices_and_context_window.json", content_type = "application/json"), responses((status = 201, description = "{\"data\":{\"version\",\"models\",\"skipped\",\"imported_at\"}}"), (status = 400, description = "not a LiteLLM price map")))]
pub async fn import_prices(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let imported = litellm::parse(&body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let now = now_ms();
    let models = imported.prices.len() as u64;
    let table = PriceTable::imported(&imported.version, imported.prices, now);
    let record = PriceTableRecord {
        version: imported.version.clone(),
        source: PriceSource::LiteLlm.as_str().to_owned(),
        models,
        skipped: imported.skipped,
        prices: table.prices_json(),
        imported_at_ms: now,
    };
    gw.stores.prices.save_price_table(&record).await?;
    gw.prices.swap(table);
    tracing::info!(version = %imported.version, models, skipped = imported.skipped, "imported a price table");
    Ok(created(json!({
        "version": imported.version,
        "models": models,
        "skipped": imported.skipped,
        "imported_at": rfc3339(now),
    })))
}

/// `GET /api/prices`: the table in use; with `?model=`, that model's price and what set it.
#[utoipa::path(get, path = "/prices", tag = "admin", params(("model" = Option<String>, Query, description = "a model to price")), responses((status = 200, description = "{\"data\":{\"version\",\"source\",\"imported_at\",\"models\"}}")))]
pub async fn get_prices(
    State(gw): State<AppState>,
    parts: Parts,
    Params(query): Params<PriceQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let table = gw.prices.table();
    let mut body = json!({
        "version": &*table.version,
        "source": table.source.as_str(),
        "imported_at": table.imported_at_ms.map(rfc3339),
        "models": table.len(),
    });
    if let Some(model) = query.model {
        let price = gw.prices.lookup(None, &model);
        body["model"] = json!(model);
        body["price"] = price.as_ref().map_or(Value::Null, render_price);
    }
    Ok(item(body))
}

fn render_price(priced: &Priced) -> Value {
    json!({
        "input_per_million": priced.price.input.as_usd(),
        "output_per_million": priced.price.output.as_usd(),
        "cached_input_per_million": priced.price.cached_input.map(UsdNanos::as_usd),
        "version": &*priced.version,
    })
}
