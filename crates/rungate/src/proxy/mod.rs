//! The in-series pipeline for one model call — read this first. [`handle`] is the whole
//! governance story as numbered steps that pass values to each other:
//!
//! 1. decode — parse only what governance needs from the body (400 on bad input)
//!    1b. target — which provider and model the model name means (`route`)
//! 2. resolve the run — join, create, or refuse (409 / 403)
//!    2b. approval gates — a retry of a reviewed request (202 / 403 / the held answer), or a
//!    paused run (202)
//! 3. policy decision — allowed models (403), the run's hard budget (402)
//!    3b. declared tools that need approval (202)
//! 4. route — the provider keys to try, in order (`route`, from the run's `routing` policy)
//! 5. forward — the original bytes, rewritten only where Rungate must, or translated when a
//!    failed call is re-sent to a provider of another dialect (`attempts`)
//! 6. settle — record step, ledger and audit in one transaction (a stream settles in its own
//!    task, so a client hanging up cannot cancel it)
//!    6b. proposed tool calls that need approval: the answer is held behind a gate (202)
//! 7. render — the provider's answer plus the `x-rungate-*` headers
//!
//! Authentication happened before (in `api::auth`); rendering of errors happens after (in
//! `api::error`). Nothing here chooses a status code except passing the provider's through.

mod attempts;
pub mod decide;
pub mod directory;
pub mod gates;
pub mod lifecycle;
pub mod live;
pub mod resolve;
pub mod route;
mod settle;
pub mod shared;
mod stream;

use std::sync::Arc;
use std::time::Instant;

use attempts::AnswerBody;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rungate_wire::{Dialect, ResponseOptions, Rewrite, StreamTap, StreamTranslator, WireError};
use serde_json::json;

use crate::api::error::{ApiError, Block, BlockCode, ProviderFailure};
use crate::app::Gateway;
use crate::budget;
use crate::money::UsdNanos;
use crate::providers::{ForwardRequest, Provider, UpstreamError};
use crate::run::{self, RunId, StepId, StepStatus};
use crate::store::{Agent, AgentStatus};
use live::LiveRun;
use settle::{Outcome, StepDraft};
pub use stream::ClientStream;

/// The endpoint a call came in on: its wire dialect and the provider it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/messages` (and `count_tokens`)
    Messages,
    /// `POST /v1/responses`
    Responses,
}

impl Ingress {
    pub fn dialect(self) -> Dialect {
        match self {
            Ingress::ChatCompletions => Dialect::OpenAi,
            Ingress::Messages => Dialect::Anthropic,
            Ingress::Responses => Dialect::Responses,
        }
    }

    /// The provider a model name no rule claims goes to.
    pub fn provider(self) -> Provider {
        match self {
            Ingress::ChatCompletions | Ingress::Responses => Provider::OpenAi,
            Ingress::Messages => Provider::Anthropic,
        }
    }
}

/// One proxied call, authenticated.
pub struct ProxyCall {
    pub ingress: Ingress,
    /// Upstream path and query, e.g. `/v1/messages?beta=true`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub agent: Arc<Agent>,
}

pub enum ReplyBody {
    Full(Bytes),
    Stream(ClientStream),
}

/// The answer to render: the provider's status and body, with Rungate's headers.
pub struct ProxyReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ReplyBody,
}

/// A refusal or failure, with the run it happened in (for `x-rungate-run-id`).
pub struct ProxyFailure {
    pub error: ApiError,
    pub run_id: Option<RunId>,
}

impl From<ApiError> for ProxyFailure {
    fn from(error: ApiError) -> ProxyFailure {
        ProxyFailure {
            error,
            run_id: None,
        }
    }
}

/// Governs and forwards one model call.
pub async fn handle(gw: &Arc<Gateway>, call: ProxyCall) -> Result<ProxyReply, ProxyFailure> {
    let dialect = call.ingress.dialect();
    let began = Instant::now();
    // 1. decode
    let mut facts = rungate_wire::inspect_request(dialect, &call.body).map_err(decode_error)?;
    if call.agent.status == AgentStatus::Disabled {
        return Err(agent_disabled(&call.agent).into());
    }
    // 1b. target: from here on `facts.model` is the bare name the provider knows
    let target = route::resolve_target(gw, &call.agent, call.ingress.provider(), &facts.model)
        .await
        .map_err(|e| route_error(call.ingress.provider(), e))?;
    let requested_model = std::mem::replace(&mut facts.model, target.model.clone());
    // 2. resolve the run
    let joined =
        resolve::resolve_run(gw, &call.agent, &call.headers, facts.body_run_id.as_deref()).await?;
    let run = joined.run;
    let in_run = |error: ApiError| ProxyFailure {
        error,
        run_id: Some(run.id.clone()),
    };
    // 2b. approval gates (only runs whose policy has approval rules)
    let gated = gates::gated_policy(&run).cloned();
    let fingerprint = gated
        .as_ref()
        .map(|_| crate::gate::fingerprint("POST", &call.path_and_query, &call.body));
    let asker = gated
        .as_deref()
        .zip(fingerprint.as_deref())
        .map(|(policy, fingerprint)| gates::Asker {
            run: &run,
            policy,
            agent: &call.agent,
            fingerprint,
        });
    let mut declared_approved = false;
    if let Some(asker) = &asker {
        match gates::before_forward(gw, asker).await.map_err(in_run)? {
            gates::Pass::Fresh => {}
            gates::Pass::Approved { declared } => declared_approved = declared,
            gates::Pass::Held(reply) => return Ok(reply),
        }
    }
    // 3. policy decision, at the price of the target's key (what `route::plan` tries first;
    // a route that fails here is left out or reported there, at step 4)
    let first_route = route::target_route(gw, &call.agent, &target).await;
    let key_prices = first_route.as_ref().ok().and_then(|r| r.pricing.as_deref());
    let price = gw.prices.lookup(key_prices, &facts.model);
    // Agent-wide windows are looked up only when the run's policy uses them.
    let rated = run
        .policy
        .as_ref()
        .is_some_and(|p| p.document.rate_limits.is_some());
    let agent_rate = rated.then(|| gw.runs.agent_rate(&call.agent.id));
    // With shared books the hour is read from the database with the admission.
    let hourly = run.policy.as_deref().and_then(decide::agent_hourly_limit);
    let hour = match hourly.filter(|_| gw.shared.is_none()) {
        Some(_) => Some(
            agent_hour(gw, &call.agent.id)
                .await
                .map_err(|e| in_run(e.into()))?,
        ),
        None => None,
    };
    let windows = decide::AgentWindows {
        agent_id: &call.agent.id,
        rate: agent_rate.as_deref(),
        hour: hour.as_deref(),
    };
    let hold = match decide::admit(
        gw.shared.as_ref(),
        &run,
        &windows,
        target.provider,
        &facts,
        &call.body,
        price.as_ref().map(|p| p.price),
        run::now_ms(),
    )
    .await
    {
        Ok(hold) => hold,
        Err(error) => {
            // 3a. a run whose policy asks for approval past its cap pauses instead
            if let Some(asker) = &asker {
                if let Some(waiting) = gates::budget_exceeded(gw, asker, &error, &facts.model).await
                {
                    return Err(in_run(waiting));
                }
            }
            record_refusal(gw, &run, &call.agent.id, &facts.model, &error).await;
            return Err(in_run(error));
        }
    };
    // 3b. declared tools that need approval; the hold is released on the way out
    if let (Some(asker), false) = (&asker, declared_approved) {
        gates::declared_tools(gw, asker, &facts.declared_tools)
            .await
            .map_err(in_run)?;
    }
    // 4. route
    let routing = run
        .policy
        .as_ref()
        .and_then(|p| p.document.routing.as_ref());
    let plan = route::plan(gw, &call.agent, &target, first_route, routing)
        .await
        .map_err(|e| in_run(route_error(target.provider, e)))?;
    // 5. forward
    let inject_usage = facts.stream && dialect == Dialect::OpenAi && !facts.include_usage;
    run.touch(run::now_ms());
    let first = &plan.candidates[0];
    let mut draft = StepDraft {
        id: StepId::generate(),
        run: run.clone(),
        agent_id: call.agent.id.clone(),
        provider: first.provider(),
        model: first.model.clone(),
        price,
        hold,
        started: Instant::now(),
        created_at_ms: run::now_ms(),
        attempt: 1,
        client: dialect,
        input_estimate: budget::estimate_input_tokens(facts.prompt_chars),
    };
    let attempts = attempts::Attempts {
        gw,
        client: dialect,
        facts: &facts,
        requested_model: &requested_model,
        body: &call.body,
        path_and_query: &call.path_and_query,
        headers: &call.headers,
        routing,
        inject_usage,
    };
    let answer = match attempts.send(&plan, &mut draft).await {
        Ok(answer) => answer,
        Err(attempts::Failed::Refused(error)) => return Err(in_run(error)),
        Err(attempts::Failed::Exhausted(exhausted)) => {
            let error = upstream_failed(gw, draft, exhausted.error, exhausted.failures).await;
            return Err(in_run(error));
        }
    };
    let status = answer.status;
    let translated = answer.dialect != dialect;
    let mut headers = run_headers(
        &run,
        &draft.id,
        answer.candidate.provider(),
        &answer.candidate.model,
        joined.warning.as_deref(),
    );
    set_header(
        &mut headers,
        "x-rungate-failover",
        &answer.failovers.to_string(),
    );
    copy_provider_headers(&answer.headers, &mut headers);
    let is_sse = header_text(&answer.headers, "content-type")
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let answered_in = ResponseOptions {
        model: &answer.candidate.model,
        created_unix: u64::try_from(run::now_ms() / 1000).unwrap_or(0),
    };
    let body = match answer.body {
        // 6. settle, 7. render
        AnswerBody::Unread(upstream) if status.is_success() && facts.stream && is_sse => {
            let translator =
                translated.then(|| StreamTranslator::new(answer.dialect, dialect, &answered_in));
            let tap = stream::ClientTap::new(StreamTap::new(dialect, inject_usage), translator);
            set_header(&mut headers, "cache-control", "no-cache");
            set_header(&mut headers, "x-accel-buffering", "no");
            set_header(&mut headers, "content-type", "text/event-stream");
            let step_id = draft.id.0.clone();
            let stream = stream::relay(gw.clone(), upstream, tap, draft, status.as_u16());
            // 6b. a stream that may propose a watched tool is held until its proposals are known
            if let Some(asker) = asker
                .as_ref()
                .filter(|a| gates::watches_stream(a, &facts.declared_tools))
            {
                return gates::review_stream(gw, asker, dialect, status, headers, stream, step_id)
                    .await
                    .map_err(in_run);
            }
            return Ok(ProxyReply {
                status,
                headers,
                body: ReplyBody::Stream(stream),
            });
        }
        AnswerBody::Unread(upstream) => {
            match tokio::time::timeout(gw.upstream.timeout(), upstream.bytes()).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(err)) => {
                    let err = UpstreamError::Unreachable {
                        provider: answer.candidate.provider().name(),
                        message: crate::providers::upstream_error_chain(&err),
                    };
                    let error = upstream_failed(gw, draft, err, answer.failures).await;
                    return Err(in_run(error));
                }
                Err(_) => {
                    let err = UpstreamError::Timeout {
                        provider: answer.candidate.provider().name(),
                        after: gw.upstream.timeout(),
                    };
                    let error = upstream_failed(gw, draft, err, answer.failures).await;
                    return Err(in_run(error));
                }
            }
        }
        AnswerBody::Read(bytes) => bytes,
    };
    let upstream_time = draft.started.elapsed();
    if status.is_server_error() {
        let message = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
        let err = UpstreamError::ServerError {
            provider: answer.candidate.provider().name(),
            status: status.as_u16(),
            message,
        };
        return Err(in_run(
            upstream_failed(gw, draft, err, answer.failures).await,
        ));
    }
    // The provider's own usage figures, read in the dialect it answered in.
    let usage = match status.is_success() {
        true => rungate_wire::usage_from_body(answer.dialect, &body).unwrap_or_default(),
        false => Default::default(),
    };
    let bytes = match (translated, status.is_success()) {
        (false, _) => body,
        (true, false) => {
            set_header(&mut headers, "content-type", "application/json");
            Bytes::from(rungate_wire::translate_error(
                answer.dialect,
                dialect,
                status.as_u16(),
                &body,
            ))
        }
        (true, true) => {
            set_header(&mut headers, "content-type", "application/json");
            match rungate_wire::translate_response(answer.dialect, dialect, &body, &answered_in) {
                Ok(bytes) => Bytes::from(bytes),
                Err(err) => {
                    // The provider billed the call: it is charged, and the agent told why it
                    // gets no answer.
                    let message = format!(
                        "{} answered, but its answer cannot be translated: {err}",
                        answer.candidate.label
                    );
                    let outcome = Outcome {
                        usage,
                        status: StepStatus::Error,
                        http_status: Some(status.as_u16()),
                        error: Some(message.clone()),
                    };
                    draft
                        .settle(gw, outcome)
                        .await
                        .map_err(|e| in_run(e.into()))?;
                    let failure = ProviderFailure {
                        provider: answer.candidate.label.to_string(),
                        status: Some(status.as_u16()),
                        message: message.clone(),
                    };
                    return Err(in_run(ApiError::Provider {
                        message,
                        failures: vec![failure],
                    }));
                }
            }
        }
    };
    // The model's proposed tool calls meet the same rules as declared and reported ones; a
    // refused proposal is still charged (the provider billed it) but its answer is withheld.
    let proposal_refusal = match status.is_success() {
        true => decide::check_proposals(gw, &run, dialect, &bytes)
            .await
            .err(),
        false => None,
    };
    let outcome = if status.is_success() {
        let (status_of_step, error) = match &proposal_refusal {
            Some(refusal) => (StepStatus::Blocked, Some(refusal.to_string())),
            None => (StepStatus::Success, None),
        };
        Outcome {
            usage,
            status: status_of_step,
            http_status: Some(status.as_u16()),
            error,
        }
    } else {
        let message = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
        Outcome {
            usage: Default::default(),
            status: StepStatus::Error,
            http_status: Some(status.as_u16()),
            error: Some(message),
        }
    };
    if let Some(refusal) = proposal_refusal {
        draft
            .settle(gw, outcome)
            .await
            .map_err(|e| in_run(e.into()))?;
        record_refusal(gw, &run, &call.agent.id, &facts.model, &refusal).await;
        return Err(in_run(refusal));
    }
    // 6b. proposed tool calls that need approval: charge the step, hold the answer
    if let Some(asker) = asker.as_ref().filter(|_| status.is_success()) {
        let calls = rungate_wire::proposed_calls(dialect, &bytes);
        let held = crate::gate::HeldAnswer {
            status: status.as_u16(),
            content_type: header_text(&headers, "content-type")
                .unwrap_or("application/json")
                .to_owned(),
            body: bytes.to_vec(),
            step_id: draft.id.0.clone(),
        };
        let now = run::now_ms();
        let held_gates = gates::proposed_actions(asker, &calls, &held, now);
        if !held_gates.is_empty() {
            draft
                .settle(gw, outcome)
                .await
                .map_err(|e| in_run(e.into()))?;
            return Err(in_run(gates::open(gw, asker, held_gates, now).await));
        }
    }
    let settled = draft
        .settle(gw, outcome)
        .await
        .map_err(|e| in_run(e.into()))?;
    set_header(
        &mut headers,
        "x-rungate-cost-usd",
        &settled.cost.to_header(),
    );
    set_header(
        &mut headers,
        "x-rungate-tokens-used",
        &settled.usage.total().to_string(),
    );
    set_budget_headers(
        &mut headers,
        &run,
        settled.run.spend,
        settled.run.input_tokens + settled.run.output_tokens,
    );
    if settled.unpriced {
        append_warning(
            &mut headers,
            &format!("model {} has no price; cost recorded as 0", facts.model),
        );
    }
    gw.metrics
        .record_overhead(began.elapsed().saturating_sub(upstream_time));
    Ok(ProxyReply {
        status,
        headers,
        body: ReplyBody::Full(bytes),
    })
}

/// Forwards a call that is never charged (Anthropic `count_tokens`): authenticated and
/// decoded, but no run or step.
pub async fn forward_uncharged(
    gw: &Arc<Gateway>,
    call: ProxyCall,
) -> Result<ProxyReply, ProxyFailure> {
    let dialect = call.ingress.dialect();
    let provider = call.ingress.provider();
    let facts = rungate_wire::inspect_request(dialect, &call.body).map_err(decode_error)?;
    if call.agent.status == AgentStatus::Disabled {
        return Err(agent_disabled(&call.agent).into());
    }
    let route = gw
        .directory
        .route(&call.agent, provider)
        .await
        .map_err(|e| route_error(provider, e))?;
    let rewrite = Rewrite {
        strip_rungate: facts.has_rungate_field,
        ..Rewrite::default()
    };
    let body =
        rungate_wire::rewrite_request(dialect, &call.body, &rewrite).map_err(decode_error)?;
    let request = ForwardRequest {
        provider,
        base_url: &route.base_url,
        api_key: route.api_key.as_deref(),
        path_and_query: &call.path_and_query,
        client_headers: &call.headers,
        body,
        timeout: None,
    };
    let response = gw
        .upstream
        .send(request)
        .await
        .map_err(|e| ProxyFailure::from(upstream_error(e, Vec::new())))?;
    let mut headers = HeaderMap::new();
    copy_provider_headers(&response.headers, &mut headers);
    let bytes = tokio::time::timeout(gw.upstream.timeout(), response.body.bytes())
        .await
        .map_err(|_| {
            ProxyFailure::from(upstream_error(
                UpstreamError::Timeout {
                    provider: provider.name(),
                    after: gw.upstream.timeout(),
                },
                Vec::new(),
            ))
        })?
        .map_err(|e| {
            ProxyFailure::from(upstream_error(
                UpstreamError::Unreachable {
                    provider: provider.name(),
                    message: e.to_string(),
                },
                Vec::new(),
            ))
        })?;
    Ok(ProxyReply {
        status: response.status,
        headers,
        body: ReplyBody::Full(bytes),
    })
}

/// Writes `run.blocked` (and, the first time the budget refuses, `budget.exceeded`) to the
/// run's audit chain, for operators and the webhooks that will deliver them.
pub(crate) async fn record_refusal(
    gw: &Gateway,
    run: &LiveRun,
    agent_id: &str,
    model: &str,
    error: &ApiError,
) {
    let ApiError::Blocked(block) = error else {
        return;
    };
    let now = run::now_ms();
    let actor = format!("agent:{agent_id}");
    let mut events = vec![crate::audit::AuditEvent {
        kind: "run.blocked",
        actor: actor.clone(),
        data: json!({"code": block.code.as_str(), "rule": block.context["rule"], "model": model}),
        at_ms: now,
    }];
    let budget = matches!(
        block.code,
        BlockCode::BudgetExceeded | BlockCode::TokenBudgetExceeded
    );
    if budget && run.first_exceeded() {
        events.push(crate::audit::AuditEvent {
            kind: "budget.exceeded",
            actor,
            data: block.details.clone(),
            at_ms: now,
        });
    }
    if let Err(err) = gw.stores.runs.append_events(&run.id, events).await {
        tracing::error!(run_id = %run.id, error = %err, "failed to record a refusal");
    }
}

/// The agent's last-hour spend window, seeded from the store on first use after a start.
async fn agent_hour(
    gw: &Gateway,
    agent_id: &str,
) -> Result<Arc<crate::budget::HourlySpend>, crate::store::StoreError> {
    if let Some(window) = gw.runs.agent_hour(agent_id) {
        return Ok(window);
    }
    let now = run::now_ms();
    let spent = gw
        .stores
        .runs
        .agent_spend_since(agent_id, now - 3_600_000)
        .await?;
    Ok(gw
        .runs
        .seed_agent_hour(agent_id, crate::budget::HourlySpend::seeded(now, spent)))
}

fn decode_error(err: WireError) -> ApiError {
    ApiError::invalid(err.to_string())
}

fn agent_disabled(agent: &Agent) -> ApiError {
    ApiError::blocked(Block {
        code: BlockCode::AgentDisabled,
        message: format!("Agent {} is disabled", agent.name),
        run_id: None,
        details: json!({"agent_id": agent.id}),
        context: json!({"rule": "agent_disabled", "agent_id": agent.id, "how_to_recover": "ask an operator to re-enable the agent"}),
        retry_after_s: None,
    })
}

fn route_error(provider: Provider, err: directory::RouteError) -> ApiError {
    match err {
        directory::RouteError::Store(e) => e.into(),
        other => ApiError::Provider {
            message: other.to_string(),
            failures: vec![ProviderFailure {
                provider: provider.name().to_owned(),
                status: None,
                message: other.to_string(),
            }],
        },
    }
}

/// The caller's 504 (the one provider tried timed out) or 502, listing the failed attempts
/// before (`failures`) and this last one.
fn upstream_error(err: UpstreamError, mut failures: Vec<ProviderFailure>) -> ApiError {
    let message = err.to_string();
    let (provider, status, detail) = match &err {
        UpstreamError::Timeout { provider, .. } | UpstreamError::Unreachable { provider, .. } => {
            (*provider, None, message.clone())
        }
        UpstreamError::ServerError {
            provider,
            status,
            message,
        } => (*provider, Some(*status), message.clone()),
    };
    failures.push(ProviderFailure {
        provider: provider.to_owned(),
        status,
        message: detail,
    });
    match err {
        UpstreamError::Timeout { .. } if failures.len() == 1 => ApiError::ProviderTimeout {
            message,
            provider: provider.to_owned(),
        },
        _ => ApiError::Provider {
            message: format!("Every provider failed: {message}"),
            failures,
        },
    }
}

/// Records the failed step, then turns the failure into the caller's 502/504.
async fn upstream_failed(
    gw: &Gateway,
    draft: StepDraft,
    err: UpstreamError,
    failures: Vec<ProviderFailure>,
) -> ApiError {
    let status = if matches!(err, UpstreamError::Timeout { .. }) {
        StepStatus::Timeout
    } else {
        StepStatus::Error
    };
    let http_status = match &err {
        UpstreamError::ServerError { status, .. } => Some(*status),
        UpstreamError::Timeout { .. } | UpstreamError::Unreachable { .. } => None,
    };
    let usage = match status {
        StepStatus::Timeout => draft.timed_out_usage(),
        _ => Default::default(),
    };
    let outcome = Outcome {
        usage,
        status,
        http_status,
        error: Some(err.to_string()),
    };
    if let Err(store_err) = draft.settle(gw, outcome).await {
        tracing::error!(error = %store_err, "failed to record a failed step");
    }
    tracing::warn!(error = %err, "upstream call failed");
    upstream_error(err, failures)
}

/// Provider headers worth passing back (content type, request ids, rate-limit hints).
fn copy_provider_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let n = name.as_str();
        let keep = n == "content-type"
            || n == "retry-after"
            || n == "request-id"
            || n == "x-request-id"
            || n == "openai-processing-ms"
            || n.starts_with("x-ratelimit-")
            || n.starts_with("anthropic-ratelimit-");
        if keep {
            to.insert(name.clone(), value.clone());
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn append_warning(headers: &mut HeaderMap, warning: &str) {
    let value = match headers
        .get("x-rungate-warning")
        .and_then(|v| v.to_str().ok())
    {
        Some(existing) => format!("{existing}; {warning}"),
        None => warning.to_owned(),
    };
    set_header(headers, "x-rungate-warning", &value);
}

/// The headers known before the provider answers (all a stream gets up front).
fn run_headers(
    run: &LiveRun,
    step: &StepId,
    provider: Provider,
    model: &str,
    warning: Option<&str>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(16);
    set_header(&mut headers, "x-rungate-run-id", run.id.as_str());
    set_header(&mut headers, "x-rungate-step-id", &step.0);
    set_header(&mut headers, "x-rungate-provider", provider.name());
    set_header(&mut headers, "x-rungate-model", model);
    set_budget_headers(&mut headers, run, run.spend(), run.tokens());
    if let Some(warning) = warning {
        append_warning(&mut headers, warning);
    }
    headers
}

fn set_budget_headers(headers: &mut HeaderMap, run: &LiveRun, spend: UsdNanos, tokens: u64) {
    if let Some(remaining) = budget::remaining(run.hard_limit(), spend) {
        set_header(
            headers,
            "x-rungate-budget-remaining-usd",
            &remaining.to_header(),
        );
    }
    if let Some(limit) = run.token_limit() {
        set_header(
            headers,
            "x-rungate-budget-remaining-tokens",
            &limit.saturating_sub(tokens).to_string(),
        );
    }
}
