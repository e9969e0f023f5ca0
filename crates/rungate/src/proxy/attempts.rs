//! Step 5 of the pipeline, forward: the call goes to the first candidate of its [`Plan`] and,
//! when that attempt fails in a way the run's `routing` policy retries (429, 5xx, timeout,
//! unreachable), to the same provider again or to the next one — translated into that
//! provider's dialect when it speaks another one, so the agent still gets the format it sent.
//!
//! Failover happens only before any answer byte reaches the agent: once a provider has sent a
//! successful response head the call is committed to it (a stream that dies later ends with
//! an error event, as on a single provider). Each failed attempt is its own step — charged
//! what the provider can bill for it (nothing for an error answer, the estimated input for a
//! timeout, where the provider may have done the work) — with its own audit events, and
//! `step.failed_over` names where the call went next. The call's budget hold moves with it to
//! the attempt that answers, which settles it; a provider that prices the call differently is
//! tried only once the hold has been re-judged at its price, so a failover cannot carry a run
//! past its cap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use rungate_wire::{Dialect, RequestFacts, RequestOptions, Rewrite};
use serde_json::json;

use super::route::{Candidate, Plan};
use super::settle::{Outcome, StepDraft};
use crate::api::error::{ApiError, ProviderFailure};
use crate::app::Gateway;
use crate::audit::AuditEvent;
use crate::budget::CallEstimate;
use crate::policy::{AttemptFailure, Next, Routing};
use crate::providers::health::Admission;
use crate::providers::{ForwardRequest, UpstreamError, upstream_error_chain};
use crate::run::{self, StepStatus};

/// Anthropic requires `max_tokens`; a call translated to it from a dialect where the limit is
/// optional gets this one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The longest a same-provider retry of a 429 waits for the provider's `Retry-After`.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

/// What every attempt of one call shares.
pub struct Attempts<'a> {
    pub gw: &'a Arc<Gateway>,
    /// The dialect the agent speaks.
    pub client: Dialect,
    pub facts: &'a RequestFacts,
    /// The model name as the agent sent it (maybe prefixed or an alias).
    pub requested_model: &'a str,
    /// The agent's body, untouched.
    pub body: &'a Bytes,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub routing: Option<&'a Routing>,
    /// OpenAI streams: the agent did not ask for usage, Rungate does.
    pub inject_usage: bool,
}

/// A provider's answer to the attempt the call settled on.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: AnswerBody,
    pub candidate: Candidate,
    /// The dialect the answer is in (the agent's own unless the call was translated).
    pub dialect: Dialect,
    /// Attempts before this one.
    pub failovers: u32,
    /// The failed attempts before this one, for error details.
    pub failures: Vec<ProviderFailure>,
}

pub enum AnswerBody {
    /// The head only; the body (maybe a stream) is still to be read.
    Unread(reqwest::Response),
    /// An error answer, read to judge it.
    Read(Bytes),
}

/// Every attempt failed and the last one got no answer at all.
pub struct Exhausted {
    pub error: UpstreamError,
    /// The attempts before the last.
    pub failures: Vec<ProviderFailure>,
}

pub enum Failed {
    Exhausted(Exhausted),
    /// The call cannot be sent at all (its body does not translate to the target's dialect).
    Refused(ApiError),
}

/// How the last attempt ended.
enum Last {
    /// The provider answered with an error status.
    Answered(StatusCode, HeaderMap, Bytes),
    /// No answer: timeout or no connection.
    NoAnswer(UpstreamError),
}

impl Last {
    fn status(&self) -> Option<u16> {
        match self {
            Last::Answered(status, _, _) => Some(status.as_u16()),
            Last::NoAnswer(_) => None,
        }
    }

    fn message(&self) -> String {
        match self {
            Last::Answered(_, _, bytes) => {
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned()
            }
            Last::NoAnswer(err) => err.to_string(),
        }
    }
}

/// One attempt's request, ready to send.
struct Prepared {
    dialect: Dialect,
    path_and_query: String,
    body: Bytes,
}

impl Attempts<'_> {
    /// Sends the call along `plan` until an attempt answers or the policy gives up. `draft`
    /// follows the attempts: on return it describes the one that answered (or failed last).
    pub async fn send(&self, plan: &Plan, draft: &mut StepDraft) -> Result<Answer, Failed> {
        let no_routing = Routing::default();
        let routing = self.routing.unwrap_or(&no_routing);
        // Chain entries that could not be routed are part of what the agent is told on failure.
        let mut failures: Vec<ProviderFailure> = plan
            .left_out
            .iter()
            .map(|(label, reason)| ProviderFailure {
                provider: label.clone(),
                status: None,
                message: format!("left out: {reason}"),
            })
            .collect();
        let Some(mut index) = self.choose(plan, 0, draft, &mut failures) else {
            return Err(Failed::Refused(unaffordable(failures)));
        };
        let first = &plan.candidates[index];
        if first.model != draft.model || first.provider() != draft.provider {
            // Open circuits, an unroutable target or the budget moved the first attempt down
            // the chain.
            retarget(self.gw, draft, first);
            draft.attempt = 1;
        }
        let mut retries = 0;
        let mut failovers = 0;
        loop {
            let candidate = &plan.candidates[index];
            let prepared = match self.prepare(candidate, draft.hold.clamped_output) {
                Ok(prepared) => prepared,
                Err(message) if failovers == 0 && index == 0 => {
                    return Err(Failed::Refused(ApiError::invalid(message)));
                }
                Err(message) => {
                    failures.push(failure_of(candidate, None, message));
                    match self.choose(plan, index + 1, draft, &mut failures) {
                        Some(next) => {
                            index = next;
                            retarget(self.gw, draft, &plan.candidates[index]);
                            continue;
                        }
                        None => {
                            return Err(Failed::Exhausted(Exhausted {
                                error: UpstreamError::Unreachable {
                                    provider: candidate.provider().name(),
                                    message: "no provider of the chain can take this call".into(),
                                },
                                failures,
                            }));
                        }
                    }
                }
            };
            let breaker = self
                .gw
                .breakers
                .of(&candidate.route.key_id, candidate.provider());
            let request = ForwardRequest {
                provider: candidate.provider(),
                base_url: &candidate.route.base_url,
                api_key: candidate.route.api_key.as_deref(),
                path_and_query: &prepared.path_and_query,
                client_headers: self.headers,
                body: prepared.body,
                timeout: routing.timeout(),
            };
            let sent = self.gw.upstream.send(request).await;
            let (failure, last) = match sent {
                Ok(response) if !is_failure(response.status) => {
                    self.gw.breakers.record_success(&breaker);
                    return Ok(Answer {
                        status: response.status,
                        headers: response.headers,
                        body: AnswerBody::Unread(response.body),
                        candidate: candidate.clone(),
                        dialect: prepared.dialect,
                        failovers,
                        failures,
                    });
                }
                Ok(response) => {
                    let wait = routing.timeout().unwrap_or(self.gw.upstream.timeout());
                    let bytes = match tokio::time::timeout(wait, response.body.bytes()).await {
                        Ok(Ok(bytes)) => bytes,
                        Ok(Err(err)) => Bytes::from(upstream_error_chain(&err)),
                        Err(_) => Bytes::from_static(b"the error body did not arrive in time"),
                    };
                    let failure = AttemptFailure::Status(response.status.as_u16());
                    (
                        failure,
                        Last::Answered(response.status, response.headers, bytes),
                    )
                }
                Err(err @ UpstreamError::Timeout { .. }) => {
                    (AttemptFailure::Timeout, Last::NoAnswer(err))
                }
                Err(err) => (AttemptFailure::Unreachable, Last::NoAnswer(err)),
            };
            let message = last.message();
            self.gw
                .breakers
                .record_failure(&breaker, run::now_ms(), &message);
            let next = routing.next(failure, retries, index + 1 < plan.candidates.len());
            // Where the call goes next; the candidates passed over are part of the story.
            let mut passed_over = Vec::new();
            let to = match next {
                Next::GiveUp => None,
                Next::Retry => Some((index, retries + 1)),
                Next::Failover => self
                    .choose(plan, index + 1, draft, &mut passed_over)
                    .map(|to| (to, 0)),
            };
            let Some((to, to_retries)) = to else {
                // The last failure is the caller's error (or answer); it is listed from there.
                failures.extend(passed_over);
                return match last {
                    Last::Answered(status, headers, bytes) => {
                        // That answer goes back to the agent; the call's own step records it.
                        Ok(Answer {
                            status,
                            headers,
                            body: AnswerBody::Read(bytes),
                            candidate: candidate.clone(),
                            dialect: prepared.dialect,
                            failovers,
                            failures,
                        })
                    }
                    Last::NoAnswer(error) => Err(Failed::Exhausted(Exhausted { error, failures })),
                };
            };
            failures.push(failure_of(candidate, last.status(), message.clone()));
            failures.extend(passed_over);
            if let (Next::Retry, Last::Answered(StatusCode::TOO_MANY_REQUESTS, headers, _)) =
                (next, &last)
            {
                let wait = retry_after(headers).unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait.min(MAX_RATE_LIMIT_WAIT)).await;
            }
            self.move_on(
                &plan.candidates[index],
                &plan.candidates[to],
                failure,
                &message,
                draft,
            )
            .await;
            (index, retries) = (to, to_retries);
            failovers += 1;
        }
    }

    /// Records the failed attempt (with `step.retried` or `step.failed_over`) and points
    /// `draft` at the next one, on `to`.
    async fn move_on(
        &self,
        from: &Candidate,
        to: &Candidate,
        failure: AttemptFailure,
        message: &str,
        draft: &mut StepDraft,
    ) {
        let same = from.route.key_id == to.route.key_id && from.model == to.model;
        let reason = reason_of(failure);
        let event = AuditEvent {
            kind: if same {
                "step.retried"
            } else {
                "step.failed_over"
            },
            actor: "system:routing".into(),
            data: json!({
                "step_id": draft.id, "attempt": draft.attempt, "reason": reason,
                "from": {"provider": from.provider().name(), "model": from.model, "key_id": &*from.route.key_id},
                "to": {"provider": to.provider().name(), "model": to.model, "key_id": &*to.route.key_id},
            }),
            at_ms: run::now_ms(),
        };
        let outcome = Self::failed_outcome(draft, failure, message);
        if let Err(err) = draft
            .record_failed_attempt(self.gw, outcome, vec![event])
            .await
        {
            tracing::error!(run_id = %draft.run.id, error = %err, "failed to record a failed attempt");
        }
        tracing::warn!(from = from.provider().name(), to = to.provider().name(), %reason, "re-sending a failed call");
        retarget(self.gw, draft, to);
    }

    /// A failed attempt's step: no usage for an error answer or a refused connection; for a
    /// timeout, the estimated input, since the provider may have processed (and billed) it.
    fn failed_outcome(draft: &StepDraft, failure: AttemptFailure, message: &str) -> Outcome {
        let (status, http_status, usage) = match failure {
            AttemptFailure::Status(code) => (StepStatus::Error, Some(code), Default::default()),
            AttemptFailure::Timeout => (StepStatus::Timeout, None, draft.timed_out_usage()),
            AttemptFailure::Unreachable => (StepStatus::Error, None, Default::default()),
        };
        Outcome {
            usage,
            status,
            http_status,
            error: Some(message.to_owned()),
        }
    }

    /// The first candidate from `from` on that may take the call: its circuit lets it through
    /// (the last candidate always passes: a struggling provider beats none) and, when it
    /// prices the call differently, the run's budget covers it there — the call's hold is
    /// then re-judged at that price (`Books::readmit`). The candidates passed over are added
    /// to `skipped`; `None` when none is left.
    fn choose(
        &self,
        plan: &Plan,
        from: usize,
        draft: &mut StepDraft,
        skipped: &mut Vec<ProviderFailure>,
    ) -> Option<usize> {
        let last = plan.candidates.len().checked_sub(1)?;
        for (index, candidate) in plan.candidates.iter().enumerate().skip(from) {
            let breaker = self
                .gw
                .breakers
                .of(&candidate.route.key_id, candidate.provider());
            if index != last {
                if let Admission::Skip { retry_in_ms } =
                    self.gw.breakers.admit(&breaker, run::now_ms())
                {
                    skipped.push(failure_of(
                        candidate,
                        None,
                        format!("skipped: circuit open (next probe in {retry_in_ms} ms)"),
                    ));
                    continue;
                }
            }
            let price = self
                .gw
                .prices
                .lookup(candidate.route.pricing.as_deref(), &candidate.model);
            let repriced = price.as_ref().map(|p| p.price) != draft.price.as_ref().map(|p| p.price);
            if repriced {
                let estimate = CallEstimate {
                    input_tokens: draft.input_estimate,
                    max_output: self.facts.max_output_tokens,
                    price: price.map(|p| p.price),
                };
                if !self.fits(draft, &estimate) {
                    skipped.push(failure_of(
                        candidate,
                        None,
                        format!(
                            "skipped: the run's budget cannot cover the call at {}'s price",
                            candidate.model
                        ),
                    ));
                    continue;
                }
            }
            return Some(index);
        }
        None
    }

    /// Does the run's budget cover the call at `estimate`? In this process's books the hold is
    /// re-judged at the new price (and kept as it was when refused). A hold of the shared
    /// books (several gateways) stays as the database granted it; the call is then judged on
    /// the run's committed spend plus its new projected cost — the other calls in flight on
    /// other gateways are not seen from here.
    fn fits(&self, draft: &mut StepDraft, estimate: &CallEstimate) -> bool {
        let caps = draft.run.caps();
        if draft.hold.shared_id().is_none() {
            return draft
                .run
                .books
                .readmit(&mut draft.hold, &caps, estimate)
                .is_ok();
        }
        let projected = crate::budget::projected_cost(
            estimate.price,
            estimate.input_tokens,
            estimate.max_output,
        );
        caps.usd
            .is_none_or(|cap| draft.run.spend().saturating_add(projected) <= cap)
    }

    /// The request for `candidate`: the agent's bytes rewritten where Rungate must when the
    /// provider speaks the agent's dialect, else translated.
    fn prepare(&self, candidate: &Candidate, clamp: Option<u64>) -> Result<Prepared, String> {
        let to = candidate.provider().speaks(self.client);
        let rename = (candidate.model != self.requested_model).then_some(candidate.model.as_str());
        if to == self.client {
            let rewrite = Rewrite {
                strip_rungate: self.facts.has_rungate_field,
                inject_include_usage: self.inject_usage,
                model: rename,
                max_output_tokens: clamp,
            };
            let body = rungate_wire::rewrite_request(self.client, self.body, &rewrite)
                .map_err(|e| e.to_string())?;
            return Ok(Prepared {
                dialect: to,
                path_and_query: self.path_and_query.to_owned(),
                body,
            });
        }
        // Rungate's own changes first, in the agent's dialect; then the translation.
        let rewrite = Rewrite {
            strip_rungate: self.facts.has_rungate_field,
            max_output_tokens: clamp,
            ..Rewrite::default()
        };
        let own = rungate_wire::rewrite_request(self.client, self.body, &rewrite)
            .map_err(|e| e.to_string())?;
        let options = RequestOptions {
            model: &candidate.model,
            default_max_tokens: self.facts.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        };
        let body = rungate_wire::translate_request(self.client, to, &own, &options)
            .map_err(|e| format!("cannot translate the request for {}: {e}", candidate.label))?;
        Ok(Prepared {
            dialect: to,
            path_and_query: upstream_path(to, &candidate.model, self.facts.stream),
            body: Bytes::from(body),
        })
    }
}

/// No candidate can take the call (all unaffordable, say): the agent is told about each.
fn unaffordable(failures: Vec<ProviderFailure>) -> ApiError {
    ApiError::Provider {
        message: "No provider of the chain can take this call".into(),
        failures,
    }
}

fn retarget(gw: &Gateway, draft: &mut StepDraft, to: &Candidate) {
    let price = gw.prices.lookup(to.route.pricing.as_deref(), &to.model);
    draft.retarget(to.provider(), &to.model, price);
}

/// The endpoint of a dialect, for a translated call.
fn upstream_path(dialect: Dialect, model: &str, stream: bool) -> String {
    match dialect {
        Dialect::OpenAi => "/v1/chat/completions".to_owned(),
        Dialect::Anthropic => "/v1/messages".to_owned(),
        Dialect::Responses => "/v1/responses".to_owned(),
        Dialect::Gemini if stream => {
            format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
        }
        Dialect::Gemini => format!("/v1beta/models/{model}:generateContent"),
    }
}

/// Statuses that count as a failed attempt; anything else is the provider's answer.
fn is_failure(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn reason_of(failure: AttemptFailure) -> String {
    match failure {
        AttemptFailure::Status(code) => format!("status {code}"),
        AttemptFailure::Timeout => "timeout".into(),
        AttemptFailure::Unreachable => "unreachable".into(),
    }
}

fn failure_of(candidate: &Candidate, status: Option<u16>, message: String) -> ProviderFailure {
    ProviderFailure {
        provider: candidate.label.to_string(),
        status,
        message,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
