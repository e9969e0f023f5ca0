//! `/api/webhooks`: subscriptions to the events of SPEC §8, their secrets (shown once, at creation
//! or rotation), their delivery log, a test ping, enable/disable. Signing and retries are
//! `webhook` and `notify::outbox`; every handler needs `write` except the reads.

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
use crate::run::{now_ms, rfc3339};
use crate::security::{TokenKind, generate_token};
use crate::store::{Delivery, DeliveryFilter, Scope, WebhookRecord};
use crate::webhook::{self, DeliveryStatus, WebhookStatus};

fn render(hook: &WebhookRecord) -> Value {
    json!({
        "id": hook.id, "name": hook.name, "url": hook.url, "events": hook.events,
        "status": hook.status.as_str(), "secret_prefix": hook.secret_prefix,
        "rotating_until": hook.previous_secret_until_ms.filter(|until| *until > now_ms()).map(rfc3339),
        "created_at": rfc3339(hook.created_at_ms), "updated_at": rfc3339(hook.updated_at_ms),
    })
}

fn render_with_secret(hook: &WebhookRecord, secret: &str) -> Value {
    let mut body = render(hook);
    body["secret"] = json!(secret);
    body
}

fn render_delivery(d: &Delivery) -> Value {
    json!({
        "id": d.id, "webhook_id": d.webhook_id, "event_id": d.event_id, "event": d.event,
        "event_type": d.event, "status": d.status.as_str(), "attempts": d.attempts,
        "next_attempt_at": (d.status == DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_at_ms)),
        "last_status": d.last_status, "last_error": d.last_error, "data": d.data,
        "created_at": rfc3339(d.created_at_ms), "delivered_at": d.delivered_at_ms.map(rfc3339),
    })
}

/// Queues an admin-side event (`agent.created`, ...) for its subscribers. A failure is logged,
/// not returned: the action it describes has already happened.
pub async fn announce(gw: &Gateway, event: &'static str, data: Value) {
    if let Err(err) = gw
        .stores
        .webhooks
        .enqueue(event, &data, None, now_ms())
        .await
    {
        tracing::error!(event, error = %err, "cannot queue a webhook event");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    url: String,
    events: Vec<String>,
    /// Bring your own secret; generated when absent.
    secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    url: Option<String>,
    events: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct HookFilter {
    status: Option<String>,
    event: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    status: Option<String>,
    event_type: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

fn check(name: &str, url: &str, events: &[String]) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::invalid("url must be an http(s) URL"));
    }
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events must name at least one event, or \"*\"",
        ));
    }
    if let Some(unknown) = events.iter().find(|e| *e != "*" && !webhook::is_event(e)) {
        return Err(ApiError::invalid(format!(
            "unknown event {unknown:?}; known events: {}",
            webhook::EVENTS.join(", ")
        )));
    }
    Ok(())
}

async fn load(gw: &Gateway, id: &str) -> Result<WebhookRecord, ApiError> {
    gw.stores
        .webhooks
        .get_webhook(id)
        .await
        .map_err(missing("webhook", id))
}

#[utoipa::path(get, path = "/webhooks", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_webhooks(
    State(gw): State<AppState>,
    parts: Parts,
    Params(f): Params<HookFilter>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let status = match f.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            WebhookStatus::parse(s)
                .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))?,
        ),
    };
    let (hooks, total) = gw
        .stores
        .webhooks
        .list_webhooks(status, f.event.as_deref(), f.paging.page())
        .await?;
    Ok(list(hooks.iter().map(render).collect(), total))
}

#[utoipa::path(post, path = "/webhooks", tag = "admin", responses((status = 201, description = "created; `secret` is shown only here")))]
pub async fn create_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let body: CreateBody = parse_body(&body)?;
    check(&body.name, &body.url, &body.events)?;
    let secret = body
        .secret
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| generate_token(TokenKind::WebhookSecret));
    let now = now_ms();
    let hook = WebhookRecord {
        id: new_id("whk"),
        name: body.name,
        url: body.url,
        events: body.events,
        encrypted_secret: gw.directory.master_key().encrypt(&secret),
        secret_prefix: secret.chars().take(10).collect(),
        previous_encrypted_secret: None,
        previous_secret_until_ms: None,
        status: WebhookStatus::Active,
        created_at_ms: now,
        updated_at_ms: now,
    };
    gw.stores.webhooks.create_webhook(&hook).await?;
    Ok(created(render_with_secret(&hook, &secret)))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "item")))]
pub async fn get_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    Ok(item(render(&load(&gw, &id).await?)))
}

#[utoipa::path(put, path = "/webhooks/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "updated")))]
pub async fn update_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let body: UpdateBody = parse_body(&body)?;
    let mut hook = load(&gw, &id).await?;
    hook.name = body.name.unwrap_or(hook.name);
    hook.url = body.url.unwrap_or(hook.url);
    hook.events = body.events.unwrap_or(hook.events);
    check(&hook.name, &hook.url, &hook.events)?;
    hook.updated_at_ms = now_ms();
    gw.stores.webhooks.update_webhook(&hook).await?;
    Ok(item(render(&hook)))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "deleted; its pending deliveries are dead-lettered")))]
pub async fn delete_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    gw.stores
        .webhooks
        .delete_webhook(&id)
        .await
        .map_err(missing("webhook", &id))?;
    Ok(item(json!({"id": id, "deleted": true})))
}

#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the new `secret`, shown only here; the previous one signs too for 24 h")))]
pub async fn rotate_secret(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let mut hook = load(&gw, &id).await?;
    let secret = generate_token(TokenKind::WebhookSecret);
    let now = now_ms();
    hook.previous_encrypted_secret = Some(std::mem::replace(
        &mut hook.encrypted_secret,
        gw.directory.master_key().encrypt(&secret),
    ));
    hook.previous_secret_until_ms = Some(now + webhook::ROTATION_OVERLAP_MS);
    hook.secret_prefix = secret.chars().take(10).collect();
    hook.updated_at_ms = now;
    gw.stores.webhooks.update_webhook(&hook).await?;
    Ok(item(render_with_secret(&hook, &secret)))
}

#[utoipa::path(post, path = "/webhooks/{id}/enable", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "active")))]
pub async fn enable_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&gw, &parts, &id, WebhookStatus::Active).await
}

#[utoipa::path(post, path = "/webhooks/{id}/disable", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "disabled: no new deliveries")))]
pub async fn disable_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&gw, &parts, &id, WebhookStatus::Disabled).await
}

async fn set_status(
    gw: &Gateway,
    parts: &Parts,
    id: &str,
    status: WebhookStatus,
) -> Result<Response, ApiError> {
    authorize_admin(gw, parts, Scope::Write).await?;
    let mut hook = load(gw, id).await?;
    hook.status = status;
    hook.updated_at_ms = now_ms();
    gw.stores.webhooks.update_webhook(&hook).await?;
    Ok(item(render(&hook)))
}

#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "a webhook.test event was queued")))]
pub async fn test_webhook(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let hook = load(&gw, &id).await?;
    let data = json!({"webhook_id": hook.id, "message": "Test event from Rungate"});
    let queued = gw
        .stores
        .webhooks
        .enqueue("webhook.test", &data, Some(&hook.id), now_ms())
        .await?;
    Ok(item(json!({"webhook_id": hook.id, "queued": queued})))
}

#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the delivery log, newest first")))]
pub async fn list_deliveries(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    Params(q): Params<DeliveryQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    load(&gw, &id).await?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))?,
        ),
    };
    let filter = DeliveryFilter {
        status,
        event: q.event_type,
    };
    let (deliveries, total) = gw
        .stores
        .webhooks
        .deliveries(&id, &filter, q.paging.page())
        .await?;
    Ok(list(
        deliveries.iter().map(render_delivery).collect(),
        total,
    ))
}
