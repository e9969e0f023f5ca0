//! The stream tee. Upstream SSE bytes go to the client as they arrive (the tap only withholds
//! the usage chunk Rungate itself asked for); usage is read on the side. The relay runs in its
//! own task, so when the client hangs up, the partial usage is still settled; when the upstream
//! dies, the client gets an error event in its dialect, then the `event: rungate` trailer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rungate_wire::{RungateTrailer, StreamTap, StreamTranslator, TrailerTokens, Usage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::live::LiveRun;
use super::settle::{Outcome, StepDraft};
use crate::api::error::ApiError;
use crate::app::Gateway;
use crate::providers::upstream_error_chain;
use crate::run::StepStatus;

pub type ClientStream = ReceiverStream<Result<Bytes, std::io::Error>>;

/// The tap a stream goes through on its way to the client: the upstream's events as they
/// are, or translated into the client's dialect first (a failed-over call). Either way the
/// tap reads the client-dialect events, so hiding, proposals and completion work alike.
pub struct ClientTap {
    tap: StreamTap,
    translator: Option<StreamTranslator>,
}

impl ClientTap {
    pub fn new(tap: StreamTap, translator: Option<StreamTranslator>) -> ClientTap {
        ClientTap { tap, translator }
    }

    fn push(&mut self, chunk: Bytes) -> Bytes {
        match &mut self.translator {
            None => self.tap.push(chunk),
            Some(translator) => {
                let translated = translator.push(&chunk);
                self.tap.push(translated)
            }
        }
    }

    fn finish(&mut self) -> Bytes {
        let Some(translator) = &mut self.translator else {
            return self.tap.finish();
        };
        let last = translator.finish();
        let mut out = self.tap.push(last).to_vec();
        out.extend_from_slice(&self.tap.finish());
        Bytes::from(out)
    }

    /// The provider's own figures where translated (they carry what a client dialect may not,
    /// e.g. Gemini's thinking tokens).
    fn usage(&self) -> Option<Usage> {
        self.translator
            .as_ref()
            .and_then(StreamTranslator::usage)
            .or_else(|| self.tap.usage())
    }

    fn completed(&self) -> bool {
        self.tap.completed()
            || self
                .translator
                .as_ref()
                .is_some_and(StreamTranslator::completed)
    }

    fn upstream_error(&self) -> Option<&str> {
        self.translator
            .as_ref()
            .and_then(StreamTranslator::upstream_error)
            .or_else(|| self.tap.upstream_error())
    }
}

/// Starts relaying `upstream` to the returned client stream.
pub fn relay(
    gw: Arc<Gateway>,
    upstream: reqwest::Response,
    tap: ClientTap,
    draft: StepDraft,
    http_status: u16,
) -> ClientStream {
    let (tx, rx) = mpsc::channel(32);
    let tracker = gw.tasks.clone();
    tracker.spawn(async move {
        pump(gw, upstream, tap, draft, http_status, tx).await;
    });
    ReceiverStream::new(rx)
}

enum End {
    Finished,
    ClientGone,
    Failed(String),
    /// The model proposed a tool the run's policy refuses (blocked, or past its `tool_limits`):
    /// the stream is cut before the chunk that names it, so the agent never receives the call.
    Refused(ApiError),
}

/// The tools a stream proposes, judged as each one appears: a blocked tool or one past its
/// limit stops the stream; every other proposal counts toward `tool_limits` at once, so two
/// streams of one run cannot both slip under a limit.
#[derive(Default)]
struct ToolWatch {
    /// Proposals already judged.
    judged: usize,
}

impl ToolWatch {
    async fn judge(&mut self, gw: &Gateway, run: &LiveRun, tap: &ClientTap) -> Option<ApiError> {
        let proposed = tap.tap.proposed_tools();
        while let Some(tool) = proposed.get(self.judged) {
            self.judged += 1;
            if let Some(refusal) = judge_proposal(gw, run, tool).await {
                return Some(refusal);
            }
        }
        None
    }
}

async fn judge_proposal(gw: &Gateway, run: &LiveRun, tool: &str) -> Option<ApiError> {
    use super::decide::{ToolUse, tool_blocked, tool_limit, tool_limit_reached};
    let policy = run.policy.as_deref();
    if let Some(policy) = policy {
        let blocked = policy.document.blocked_tools.as_deref().unwrap_or_default();
        if blocked.iter().any(|b| b == tool) {
            return Some(tool_blocked(&run.id, policy, tool, ToolUse::Proposed));
        }
    }
    let before = match crate::proxy::shared::record_proposals(gw, run, tool, 1).await {
        Ok(before) => before,
        Err(err) => {
            tracing::warn!(run_id = %run.id, error = %err, "could not count a streamed tool proposal");
            return None;
        }
    };
    let (policy, limit) = policy.and_then(|p| Some((p, tool_limit(p, tool)?)))?;
    let reported = gw.stores.runs.tool_steps(&run.id, tool).await.unwrap_or(0);
    (reported + before + 1 > limit)
        .then(|| tool_limit_reached(&run.id, policy, tool, reported + before, limit))
}

async fn pump(
    gw: Arc<Gateway>,
    mut upstream: reqwest::Response,
    mut tap: ClientTap,
    draft: StepDraft,
    http_status: u16,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let idle: Duration = gw.upstream.timeout();
    let mut watch = ToolWatch::default();
    let end = loop {
        match tokio::time::timeout(idle, upstream.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let out = tap.push(chunk);
                if let Some(refusal) = watch.judge(&gw, &draft.run, &tap).await {
                    break End::Refused(refusal);
                }
                if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
                    break End::ClientGone;
                }
            }
            Ok(Ok(None)) => {
                let rest = tap.finish();
                if let Some(refusal) = watch.judge(&gw, &draft.run, &tap).await {
                    break End::Refused(refusal);
                }
                if !rest.is_empty() && tx.send(Ok(rest)).await.is_err() {
                    break End::ClientGone;
                }
                break End::Finished;
            }
            Ok(Err(err)) => {
                break End::Failed(format!(
                    "upstream stream broke: {}",
                    upstream_error_chain(&err)
                ));
            }
            Err(_) => break End::Failed(format!("upstream sent nothing for {idle:?}")),
        }
    };
    drop(upstream);
    let dialect = draft.client;
    let (status, error) = match (&end, tap.completed()) {
        (End::Finished, true) => (StepStatus::Success, tap.upstream_error().map(str::to_owned)),
        (End::Finished, false) => (
            StepStatus::Error,
            Some("upstream stream ended before its final event".to_owned()),
        ),
        (End::ClientGone, _) => (
            StepStatus::Error,
            Some("client disconnected mid-stream".to_owned()),
        ),
        (End::Failed(message), _) => (StepStatus::Error, Some(message.clone())),
        (End::Refused(refusal), _) => (StepStatus::Blocked, Some(refusal.to_string())),
    };
    let client_open = !matches!(end, End::ClientGone);
    let refusal = match end {
        End::Refused(refusal) => Some(refusal),
        _ => None,
    };
    if let Some(refusal) = &refusal {
        let code = match refusal {
            ApiError::Blocked(block) => block.code.as_str(),
            _ => "tool_blocked",
        };
        let _ = tx
            .send(Ok(rungate_wire::stream_error_event(
                dialect,
                code,
                &refusal.to_string(),
            )))
            .await;
    } else if client_open && status == StepStatus::Error {
        let message = error.as_deref().unwrap_or("upstream stream failed");
        let _ = tx
            .send(Ok(rungate_wire::stream_error_event(
                dialect,
                "provider_error",
                message,
            )))
            .await;
    }
    let usage = tap.usage().unwrap_or_default();
    let (run_id, step_id, provider, model) = (
        draft.run.id.to_string(),
        draft.id.0.clone(),
        draft.provider.name(),
        draft.model.clone(),
    );
    let outcome = Outcome {
        usage,
        status,
        http_status: Some(http_status),
        error,
    };
    let (run, agent_id) = (draft.run.clone(), draft.agent_id.clone());
    let cost = match draft.settle(&gw, outcome).await {
        Ok(settled) => settled.cost,
        Err(err) => {
            tracing::error!(run_id, step_id, error = %err, "failed to record a streamed step");
            crate::money::UsdNanos::ZERO
        }
    };
    if let Some(refusal) = &refusal {
        super::record_refusal(&gw, &run, &agent_id, &model, refusal).await;
    }
    if client_open {
        let trailer = RungateTrailer {
            run_id,
            step_id,
            provider: provider.to_owned(),
            model,
            cost_usd: cost.as_usd(),
            tokens: TrailerTokens {
                input: usage.input_tokens,
                output: usage.output_tokens,
            },
        };
        let _ = tx.send(Ok(rungate_wire::rungate_event(&trailer))).await;
    }
}
