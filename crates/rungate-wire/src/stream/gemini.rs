//! The tap's reading of a Gemini stream (`:streamGenerateContent?alt=sse`): every event is a
//! bare `data:` line holding a whole `GenerateContentResponse`, with no event names and no
//! `[DONE]`. `usageMetadata` is cumulative, a candidate's `finishReason` ends the answer, and an
//! error comes as a chunk `{"error":{"code","message","status"}}`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{StreamTap, contains};
use crate::lenient::{Scalar, error_message};
use crate::sse::Event;
use crate::usage::GeminiUsage;

impl StreamTap {
    /// One Gemini chunk: a whole `GenerateContentResponse`, or `{"error":{..}}`.
    pub(super) fn on_gemini_event(&mut self, event: &Event<'_>) {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Chunk<'a> {
            #[serde(borrow, default)]
            candidates: Option<&'a RawValue>,
            #[serde(borrow, default)]
            usage_metadata: Option<&'a RawValue>,
            #[serde(borrow, default)]
            model_version: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            prompt_feedback: Option<&'a RawValue>,
            #[serde(borrow, default)]
            error: Option<&'a RawValue>,
        }
        if !event.has_data {
            return;
        }
        let data = event.data.trim_ascii();
        if contains(data, b"\"functionCall\"") {
            self.seen.tools.extend(crate::answer::gemini(data));
        }
        let worth_parsing = (self.seen.model.is_none() && contains(data, b"\"modelVersion\""))
            || contains(data, b"\"usageMetadata\"")
            || contains(data, b"\"finishReason\"")
            || contains(data, b"\"blockReason\"")
            || contains(data, b"\"error\"");
        if !worth_parsing {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
            return;
        };
        self.note_model(chunk.model_version);
        if let Some(error) = chunk.error {
            self.seen.error = Some(error_message(error));
        }
        if let Some(usage) = chunk.usage_metadata.and_then(GeminiUsage::read) {
            self.seen.gemini_usage.get_or_insert_default().merge(usage);
        }
        if chunk.candidates.is_some_and(any_finished) || chunk.prompt_feedback.is_some_and(blocked)
        {
            self.seen.completed = true;
        }
    }
}

/// Whether a Gemini `candidates` array has a candidate with a `finishReason`.
fn any_finished(candidates: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Candidate<'a> {
        #[serde(rename = "finishReason", borrow, default)]
        finish_reason: Option<Scalar<'a>>,
    }
    serde_json::from_str::<Vec<Candidate>>(candidates.get()).is_ok_and(|all| {
        all.iter()
            .any(|c| matches!(&c.finish_reason, Some(Scalar::Str(reason)) if !reason.is_empty()))
    })
}

/// Whether Gemini's `promptFeedback` says the prompt was blocked (then no candidate comes).
fn blocked(feedback: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Feedback<'a> {
        #[serde(rename = "blockReason", borrow, default)]
        block_reason: Option<Scalar<'a>>,
    }
    serde_json::from_str::<Feedback>(feedback.get())
        .is_ok_and(|f| matches!(f.block_reason, Some(Scalar::Str(reason)) if !reason.is_empty()))
}
