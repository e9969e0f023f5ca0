//! `/api/policies`: versioned policy documents. Every write creates a new immutable version;
//! runs already started keep the version they pinned.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Paging, Params, created, item, list, missing, new_id, parse_body};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::api::render;
use crate::app::AppState;
use crate::policy::PolicyDocument;
use crate::store::{Scope, StoreError};

#[derive(Debug, Deserialize)]
pub struct PolicyFilter {
    name: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// Splits `{"name": ..., ...document fields}`; `base` (the current document, for updates) is
/// merged under the given fields, and a field set to `null` is removed.
fn document_from(
    body: &Bytes,
    base: Option<&PolicyDocument>,
) -> Result<(Option<String>, PolicyDocument), ApiError> {
    let mut fields: Map<String, Value> = parse_body(body)?;
    let name = match fields.remove("name") {
        Some(Value::String(name)) => Some(name),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid body at `name`: expected a string",
            ));
        }
    };
    for read_only in ["id", "version", "created_at"] {
        fields.remove(read_only);
    }
    let mut merged = match base {
        Some(doc) => serde_json::to_value(doc)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default(),
        None => Map::new(),
    };
    for (key, value) in fields {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let text = Value::Object(merged).to_string();
    let document: PolicyDocument = parse_body(text.as_bytes())?;
    document.validate().map_err(|(field, message)| {
        ApiError::invalid(format!("invalid policy at `{field}`: {message}"))
    })?;
    Ok((name, document))
}

/// Open runs keep their pinned version when a policy changes; each gets a `policy.drift`
/// event naming both versions, so an operator can see which runs still follow old rules.
async fn record_drift(
    gw: &crate::app::Gateway,
    policy: &crate::policy::PolicyVersion,
    actor: &str,
) {
    for run in gw.runs.pinned_to(&policy.policy_id) {
        let pinned = run.policy.as_ref().map(|p| p.version);
        let event = crate::audit::AuditEvent {
            kind: "policy.drift",
            actor: actor.to_owned(),
            data: serde_json::json!({"policy_id": policy.policy_id, "pinned_version": pinned, "current_version": policy.version}),
            at_ms: crate::run::now_ms(),
        };
        if let Err(err) = gw.stores.runs.append_events(&run.id, vec![event]).await {
            tracing::error!(run_id = %run.id, error = %err, "failed to record policy drift");
        }
    }
}

#[utoipa::path(get, path = "/policies", tag = "admin", responses((status = 200, description = "list")))]
pub async fn list_policies(
    State(gw): State<AppState>,
    parts: Parts,
    Params(f): Params<PolicyFilter>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let (policies, total) = gw
        .stores
        .policies
        .list_policies(f.name.as_deref(), f.paging.page())
        .await?;
    Ok(list(policies.iter().map(render::policy).collect(), total))
}

#[utoipa::path(post, path = "/policies", tag = "admin", responses((status = 201, description = "created")))]
pub async fn create_policy(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    let (name, document) = document_from(&body, None)?;
    let name = name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("name is required"))?;
    let policy = gw
        .stores
        .policies
        .create_policy(&new_id("pol"), &name, &document)
        .await?;
    Ok(created(render::policy(&policy)))
}

#[utoipa::path(get, path = "/policies/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "latest version")))]
pub async fn get_policy(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let policy = gw
        .stores
        .policies
        .get_policy(&id)
        .await
        .map_err(missing("policy", &id))?;
    Ok(item(render::policy(&policy)))
}

#[utoipa::path(put, path = "/policies/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "the new version")))]
pub async fn update_policy(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let admin = authorize_admin(&gw, &parts, Scope::Write).await?;
    let current = gw
        .stores
        .policies
        .get_policy(&id)
        .await
        .map_err(missing("policy", &id))?;
    let (_, document) = document_from(&body, Some(&current.document))?;
    let policy = gw
        .stores
        .policies
        .add_policy_version(&id, &document)
        .await?;
    record_drift(&gw, &policy, &admin.actor).await;
    Ok(item(render::policy(&policy)))
}

#[utoipa::path(delete, path = "/policies/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "deleted")))]
pub async fn delete_policy(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Write).await?;
    gw.stores
        .policies
        .delete_policy(&id)
        .await
        .map_err(missing("policy", &id))?;
    Ok(item(serde_json::json!({"id": id, "deleted": true})))
}

#[utoipa::path(put, path = "/policies/by-name/{name}", tag = "admin", params(("name" = String, Path)), responses((status = 200, description = "new version"), (status = 201, description = "created")))]
pub async fn upsert_policy(
    State(gw): State<AppState>,
    parts: Parts,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let admin = authorize_admin(&gw, &parts, Scope::Write).await?;
    match gw.stores.policies.policy_by_name(&name).await {
        Ok(current) => {
            let (_, document) = document_from(&body, Some(&current.document))?;
            let policy = gw
                .stores
                .policies
                .add_policy_version(&current.policy_id, &document)
                .await?;
            record_drift(&gw, &policy, &admin.actor).await;
            Ok(item(render::policy(&policy)))
        }
        Err(StoreError::NotFound) => {
            let (_, document) = document_from(&body, None)?;
            let policy = gw
                .stores
                .policies
                .create_policy(&new_id("pol"), &name, &document)
                .await?;
            Ok(created(render::policy(&policy)))
        }
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(get, path = "/policies/{id}/versions", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "every version, newest first")))]
pub async fn list_versions(
    State(gw): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let versions = gw
        .stores
        .policies
        .policy_versions(&id)
        .await
        .map_err(missing("policy", &id))?;
    let total = versions.len() as u64;
    Ok(list(versions.iter().map(render::policy).collect(), total))
}

#[utoipa::path(get, path = "/policies/{id}/versions/{version}", tag = "admin", params(("id" = String, Path), ("version" = i64, Path)), responses((status = 200, description = "one version")))]
pub async fn get_version(
    State(gw): State<AppState>,
    parts: Parts,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let policy = gw
        .stores
        .policies
        .policy_version(&id, version)
        .await
        .map_err(missing("policy version", &id))?;
    Ok(item(render::policy(&policy)))
}
