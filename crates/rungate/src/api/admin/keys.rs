//! `/api/provider-keys`: upstream credentials. The secret is encrypted before it reaches the
//! store and never returned — responses carry only a masked suffix. A key may carry its own
//! `pricing` (by model, or `*`), which prices its calls ahead of the price table and config.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Paging, Params, created, item, list, missing, new_id, parse_body};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::app::{AppState, Gateway};
use crate::config::PriceOverride;
use crate::providers::Provider;
use crate::run::{now_ms, rfc3339};
use crate::security::mask_suffix;
use crate::store::{KeyStatus, ProviderKeyRecord, Scope, StoreError};

fn render(key: &ProviderKeyRecord) -> Value {
    let pricing = match key.pricing.is_empty() {
        true => Value::Null,
        false => json!(key.pricing),
    };
    json!({
        "id": key.id, "provider": key.provider, "name": key.name, "base_url": key.base_url,
        "status": key.status.as_str(), "key_suffix": key.key_suffix, "masked_key": key.key_suffix,
        "pricing": pricing,
        "created_at": rfc3339(key.created_at_ms), "updated_at": rfc3339(key.updated_at_ms),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    provider: Option<String>,
    name: Option<String>,
    api_key: Option<String>,
    base_url: Option<String>,
    status: Option<String>,
    /// `{"<model or *>": {"input_per_million", "output_per_million", "cached_input_per_million"?}}`;
    /// `null` or `{}` removes the key's prices.
    #[serde(default, deserialize_with = "present")]
    pricing: Option<Option<BTreeMap<String, PriceOverride>>>,
}

/// A field that is present (even as `null`) is `Some`, so `null` can clear it.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct KeyFilter {
    provider: Option<String>,
    status: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// A base URL is stored without a trailing `/` or `/v1`: paths are appended as `/v1/...`.
fn normalize_base_url(raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed.len() > "https://".len();
    if !ok {
        return Err(ApiError::invalid(format!(
            "base_url {raw:?} must be an http(s) URL"
        )));
    }
    Ok(trimmed.to_owned())
}

fn apply(gw: &Gateway, key: &mut ProviderKeyRecord, body: KeyBody) -> Result<(), ApiError> {
    if let Some(provider) = body.provider {
        Provider::parse(&provider).ok_or_else(|| {
            let known: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
            ApiError::invalid(format!(
                "unknown provider {provider:?}; expected one of {}",
                known.join(", ")
            ))
        })?;
        key.provider = provider;
    }
    if let Some(name) = body.name {
        key.name = name;
    }
    if let Some(secret) = body.api_key {
        if secret.trim().is_empty() {
            return Err(ApiError::invalid("api_key must not be empty"));
        }
        key.encrypted_key = gw.directory.master_key().encrypt(secret.trim());
        key.key_suffix = mask_suffix(secret.trim());
    }
    if let Some(base_url) = body.base_url {
        key.base_url = if base_url.is_empty() {
            None
        } else {
            Some(normalize_base_url(&base_url)?)
        };
    }
    if let Some(pricing) = body.pricing {
        let pricing = pricing.unwrap_or_default();
        for (model, price) in &pricing {
            if model.trim().is_empty() {
                return Err(ApiError::invalid("pricing: a model name must not be empty"));
            }
            price
                .validate()
                .map_err(|msg| ApiError::invalid(format!("pricing.{model}: {msg}")))?;
        }
        key.pricing = pricing;
    }
    if let Some(status) = body.status {
        key.status = KeyStatus::parse(&status)
            .ok_or_else(|| ApiError::invalid(format!("unknown status {status:?}")))?;
    }
    if key.name.trim().is_empty() || key.encrypted_key.is_empty() || key.provider.is_empty() {
        return Err(ApiError::invalid("provider, name and api_key are required"));
    }
    let needs_base_url =
        Provider::parse(&key.provider).is_some_and(|p| p.default_base_url().is_none());
    if needs_base_url && key.base_url.is_none() {
        return Err(ApiError::invalid(format!(
            "a {} key needs a base_url (the endpoint without /v1)",
            key.provider
        )));
    }
    key.updated_at_ms = now_ms();
    Ok(())
}

fn blank(id: String) -> ProviderKeyRecord {
    let now = now_ms();
    ProviderKeyRecord {
        id,
        provider: String::new(),
        name: String::new(),
        encrypted_key: String::new(),
        key_suffix: String::new(),
        base_url: None,
        status: KeyStatus::Active,
        pricing: BTreeMap::new(),
        created_at_ms: now,
        updated_at_ms: now,
    }
}

#[utoipa::path(get, path = "/provider-keys", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_keys(
    State(gw): State<AppState>,
    parts: Parts,
    Params(f): Params<KeyFilter>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let status = f.status.as_deref().and_then(KeyStatus::parse);
    let (keys, total) = gw
        .stores
        .keys
        .list_keys(f.provider.as_deref(), status, f.paging.page())
        .await?;
    Ok(list(keys.iter().map(render).collect(), total))
}

#[utoipa::path(post, path = "/provider-keys", tag = "admin", responses((status = 201, description = "created")))]
pub async fn create_key(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut key = blank(new_id("pk"));
    apply(&gw, &mut key, parse_body(&body)?)?;
    gw.stores.keys.create_key(&key).await?;
    gw.directory.forget_keys();
    Ok(created(render(&key)))
}

#[utoipa::path(get, path = "/provider-keys/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn get_key(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let key = gw
        .stores
        .keys
        .get_key(&id)
        .await
        .map_err(missing("provider key", &id))?;
    Ok(item(render(&key)))
}

#[utoipa::path(put, path = "/provider-keys/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn update_key(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut key = gw
        .stores
        .keys
        .get_key(&id)
        .await
        .map_err(missing("provider key", &id))?;
    apply(&gw, &mut key, parse_body(&body)?)?;
    gw.stores.keys.update_key(&key).await?;
    gw.directory.forget_keys();
    Ok(item(render(&key)))
}

#[utoipa::path(delete, path = "/provider-keys/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "deleted")))]
pub async fn delete_key(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    gw.stores
        .keys
        .delete_key(&id)
        .await
        .map_err(missing("provider key", &id))?;
    gw.directory.forget_keys();
    Ok(item(json!({"id": id, "deleted": true})))
}

#[utoipa::path(put, path = "/provider-keys/by-name/{name}", tag = "admin", params(("name" = String, Path)), responses((status = 200, description = "item")))]
pub async fn upsert_key(
    State(gw): State<AppState>,
    parts: Parts,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut body: KeyBody = parse_body(&body)?;
    body.name = Some(name.clone());
    let response = match gw.stores.keys.key_by_name(&name).await {
        Ok(mut key) => {
            apply(&gw, &mut key, body)?;
            gw.stores.keys.update_key(&key).await?;
            item(render(&key))
        }
        Err(StoreError::NotFound) => {
            let mut key = blank(new_id("pk"));
            apply(&gw, &mut key, body)?;
            gw.stores.keys.create_key(&key).await?;
            created(render(&key))
        }
        Err(err) => return Err(err.into()),
    };
    gw.directory.forget_keys();
    Ok(response)
}

/// `GET /api/providers/health`: every provider key with its circuit breaker, plus the demo
/// provider once it has carried traffic. Figures are this gateway's, since it started.
#[utoipa::path(get, path = "/providers/health", tag = "admin", responses((status = 200, description = "list")))]
pub async fn providers_health(
    State(gw): State<AppState>,
    parts: Parts,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let now = now_ms();
    let mut health: std::collections::BTreeMap<String, crate::providers::health::KeyHealth> = gw
        .breakers
        .snapshot(now)
        .into_iter()
        .map(|h| (h.key_id.clone(), h))
        .collect();
    let (keys, _) = gw
        .stores
        .keys
        .list_keys(
            None,
            None,
            crate::store::Page {
                limit: 1000,
                offset: 0,
            },
        )
        .await?;
    let mut items: Vec<Value> = keys
        .iter()
        .map(|key| {
            let known = health.remove(&key.id);
            render_health(&key.id, Some(key), &key.provider, known.as_ref())
        })
        .collect();
    items.extend(
        health
            .values()
            .map(|h| render_health(&h.key_id, None, h.provider, Some(h))),
    );
    let total = items.len() as u64;
    Ok(list(items, total))
}

fn render_health(
    key_id: &str,
    key: Option<&ProviderKeyRecord>,
    provider: &str,
    health: Option<&crate::providers::health::KeyHealth>,
) -> Value {
    use crate::providers::health::CircuitState;
    let state = health.map_or(CircuitState::Closed, |h| h.state);
    json!({
        "key_id": key_id,
        "name": key.map(|k| k.name.as_str()),
        "provider": provider,
        "key_status": key.map(|k| k.status.as_str()),
        "circuit": state,
        "healthy": state == CircuitState::Closed,
        "consecutive_failures": health.map_or(0, |h| h.consecutive_failures),
        "successes": health.map_or(0, |h| h.successes),
        "failures": health.map_or(0, |h| h.failures),
        "times_opened": health.map_or(0, |h| h.times_opened),
        "last_error": health.and_then(|h| h.last_error.as_deref()),
        "last_failure_at": health.and_then(|h| h.last_failure_at_ms).map(rfc3339),
        "next_probe_at": health.and_then(|h| h.retry_at_ms).map(rfc3339),
    })
}
