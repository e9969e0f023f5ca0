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

use super::settle::{Outcome, StepDraft};
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

    /// The first proposed tool that is in `blocked`.
    fn proposes_one_of(&self, blocked: &[String]) -> Option<String> {
        if blocked.is_empty() {
            return None;
        }
        self.tap
            .proposed_tools()
            .iter()
            .find(|tool| blocked.contains(tool))
            .cloned()
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
    /// The model proposed a tool the run's policy blocks: the stream is cut before the chunk
    /// that names it, so the agent never receives the call.
    Blocked(String),
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
    let blocked = draft
        .run
        .policy
        .as_ref()
        .and_then(|p| p.document.blocked_tools.clone())
        .unwrap_or_default();
    let end = loop {
        match tokio::time::timeout(idle, upstream.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let out = tap.push(chunk);
                if let Some(tool) = tap.proposes_one_of(&blocked) {
                    break End::Blocked(tool);
                }
                if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
                    break End::ClientGone;
                }
            }
            Ok(Ok(None)) => {
                let rest = tap.finish();
                if let Some(tool) = tap.proposes_one_of(&blocked) {
                    break End::Blocked(tool);
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
        (End::Blocked(tool), _) => (
            StepStatus::Blocked,
            Some(format!("the model proposed the blocked tool {tool}")),
        ),
    };
    let client_open = !matches!(end, End::ClientGone);
    let refusal = match (&end, &draft.run.policy) {
        (End::Blocked(tool), Some(policy)) => Some(super::decide::tool_blocked(
            &draft.run.id,
            policy,
            tool,
            super::decide::ToolUse::Proposed,
        )),
        _ => None,
    };
    if let Some(refusal) = &refusal {
        let _ = tx
            .send(Ok(rungate_wire::stream_error_event(
                dialect,
                "tool_blocked",
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
    // Streamed proposals already reached the client; they still count toward `tool_limits`.
    for tool in tap.tap.proposed_tools() {
        if let Err(err) = crate::proxy::shared::record_proposals(&gw, &draft.run, tool, 1).await {
            tracing::warn!(run_id = %draft.run.id, error = %err, "could not count a streamed tool proposal");
        }
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
