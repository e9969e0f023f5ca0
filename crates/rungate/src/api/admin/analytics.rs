//! `/api/analytics/*`: cost, latency (p50/p95/p99), error and throughput figures and top lists,
//! computed from recorded steps (`crate::analytics`), and retention: `cleanup-preview` says what
//! `cleanup` would delete — runs that ended more than `days` ago, with their steps, ledger, audit
//! chain and approval requests. Running runs are never deleted.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::runs::parse_time;
use super::{Paging, Params, item, parse_body};
use crate::analytics::{self, GroupBy};
use crate::api::auth::authorize_admin;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::run::now_ms;
use crate::store::{FactFilter, Scope};

/// Steps read for one figure at most; a window past it says so in `truncated`.
const MAX_FACTS: u32 = 500_000;

#[derive(Debug, Deserialize)]
pub struct AnalyticsQuery {
    group_by: Option<String>,
    granularity: Option<String>,
    agent_id: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    since: Option<String>,
    until: Option<String>,
    metric: Option<String>,
    entity: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Deserialize)]
pub struct DaysQuery {
    days: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    days: u32,
}

fn group_by(raw: Option<&str>, granularity: Option<&str>) -> Result<GroupBy, ApiError> {
    let raw = raw.unwrap_or("agent");
    GroupBy::parse(raw, granularity).ok_or_else(|| {
        ApiError::invalid(format!(
            "group_by {raw:?} (granularity {granularity:?}) is not one of agent, model, provider, run, time (minute, hour, day)"
        ))
    })
}

/// `GET /api/analytics/{figure}`: costs, latency, errors, throughput, top.
#[utoipa::path(get, path = "/analytics/{figure}", tag = "admin", params(("figure" = String, Path)),
    responses((status = 200, description = "costs | latency | errors | throughput | top, computed from steps")))]
pub async fn get_figure(
    State(gw): State<AppState>,
    parts: Parts,
    Path(figure): Path<String>,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let filter = FactFilter {
        agent_id: q.agent_id.clone(),
        provider: q.provider.clone(),
        model: q.model.clone(),
        since_ms: parse_time("since", q.since.as_deref())?,
        until_ms: parse_time("until", q.until.as_deref())?,
    };
    let facts = gw.stores.analytics.step_facts(&filter, MAX_FACTS).await?;
    let truncated = facts.len() as u64 >= u64::from(MAX_FACTS);
    let rows: Vec<Value> = match figure.as_str() {
        "costs" => analytics::costs(
            &facts,
            group_by(q.group_by.as_deref(), q.granularity.as_deref())?,
        ),
        "latency" => analytics::latency(
            &facts,
            group_by(q.group_by.as_deref(), q.granularity.as_deref())?,
        ),
        "errors" => analytics::errors(
            &facts,
            group_by(q.group_by.as_deref(), q.granularity.as_deref())?,
        ),
        "throughput" => {
            let granularity = q
                .granularity
                .as_deref()
                .or(q.group_by.as_deref())
                .unwrap_or("hour");
            match group_by(Some(granularity), None)? {
                GroupBy::Time { granularity_ms } => analytics::throughput(&facts, granularity_ms),
                _ => {
                    return Err(ApiError::invalid(
                        "throughput is grouped by time: granularity minute, hour or day",
                    ));
                }
            }
        }
        "top" => {
            let by = group_by(q.entity.as_deref().or(q.group_by.as_deref()), None)?;
            let metric = q.metric.as_deref().unwrap_or("cost");
            let limit = q.paging.limit.unwrap_or(10) as usize;
            analytics::top(&facts, by, metric, limit).ok_or_else(|| {
                ApiError::invalid(format!(
                    "metric {metric:?} is not one of cost, tokens, steps, latency"
                ))
            })?
        }
        other => return Err(ApiError::not_found(format!("analytics figure {other}"))),
    };
    let total = rows.len() as u64;
    let page = q.paging.page();
    let rows: Vec<Value> = rows
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok(axum::Json(json!({"data": rows, "total": total, "steps_considered": facts.len(), "truncated": truncated}))
        .into_response())
}

/// The cut-off `days` ago, refusing nonsense.
fn cutoff(days: u32) -> Result<i64, ApiError> {
    if days == 0 {
        return Err(ApiError::invalid("days must be at least 1"));
    }
    Ok(now_ms() - i64::from(days) * 86_400_000)
}

#[utoipa::path(get, path = "/analytics/cleanup-preview", tag = "admin", responses((status = 200, description = "what cleanup would delete")))]
pub async fn cleanup_preview(
    State(gw): State<AppState>,
    parts: Parts,
    Params(q): Params<DaysQuery>,
) -> Result<Response, ApiError> {
    authorize_admin(&gw, &parts, Scope::Read).await?;
    let days = match q.days.as_deref() {
        None => 30,
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(format!("days: {raw:?} is not a whole number")))?,
    };
    let counts = gw.stores.analytics.retention_preview(cutoff(days)?).await?;
    Ok(item(json!({"days": days, "would_delete": counts})))
}

#[utoipa::path(post, path = "/analytics/cleanup", tag = "admin", responses((status = 200, description = "what was deleted")))]
pub async fn cleanup(
    State(gw): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    let admin = authorize_admin(&gw, &parts, Scope::Write).await?;
    let body: CleanupBody = parse_body(&body)?;
    let deleted = gw
        .stores
        .analytics
        .delete_ended_before(cutoff(body.days)?)
        .await?;
    tracing::info!(days = body.days, runs = deleted.runs, actor = %admin.actor, "retention cleanup");
    Ok(item(json!({"days": body.days, "deleted": deleted})))
}
