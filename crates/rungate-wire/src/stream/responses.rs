//! The tap's reading of an OpenAI Responses stream: typed events (`event: response.created`,
//! `response.output_text.delta`, ..., `response.completed`), each numbered by `sequence_number`,
//! with no `[DONE]`. Usage and the model come with the lifecycle events' `response` object, a
//! called tool with `response.output_item.added`; errors arrive as `error` events or as
//! `response.failed`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{StreamTap, contains, event_type, lossy};
use crate::lenient::{Scalar, error_message};
use crate::sse::Event;
use crate::usage::responses_usage;

impl StreamTap {
    pub(super) fn on_responses_event(&mut self, event: &Event<'_>) {
        let data = event.data.as_ref();
        let inferred;
        let name = match event.name {
            Some(name) => name,
            // Without `event:` lines the type is in the data. The events read here are the ones
            // that carry a `response`, an `item` or an error; text deltas are not worth a parse.
            None if [&b"\"response\""[..], b"\"item\"", b"\"error\""]
                .iter()
                .any(|needle| contains(data, needle)) =>
            {
                inferred = event_type(data);
                inferred.as_bytes()
            }
            None => return,
        };
        match name {
            b"response.created" | b"response.in_progress" if self.seen.model.is_none() => {
                self.on_response_state(data);
            }
            b"response.completed" | b"response.incomplete" => {
                self.seen.completed = true;
                self.on_response_state(data);
            }
            b"response.failed" => {
                let named_error = self.on_response_state(data);
                if !named_error {
                    self.seen.error = Some("response failed".to_owned());
                }
            }
            b"response.output_item.added" => self.on_output_item(data),
            b"error" => self.on_responses_error(data),
            _ => {}
        }
    }

    /// Reads the `response` object of a lifecycle event: its model, its usage, its error.
    /// Returns whether it named an error.
    fn on_response_state(&mut self, data: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            response: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct Response<'a> {
            #[serde(borrow, default)]
            model: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            usage: Option<&'a RawValue>,
            #[serde(borrow, default)]
            error: Option<&'a RawValue>,
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(data) else {
            return false;
        };
        let Ok(response) = serde_json::from_str::<Response>(envelope.response.get()) else {
            return false;
        };
        self.note_model(response.model);
        if let Some(usage) = response.usage.and_then(responses_usage) {
            self.seen.reported_usage = Some(usage);
        }
        match response.error {
            Some(error) => {
                self.seen.error = Some(error_message(error));
                true
            }
            None => false,
        }
    }

    /// A `function_call` (or `custom_tool_call`) output item names its tool when it is added.
    fn on_output_item(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Added<'a> {
            #[serde(borrow)]
            item: Item<'a>,
        }
        #[derive(Deserialize)]
        struct Item<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            name: Option<Scalar<'a>>,
        }
        let Ok(Added { item }) = serde_json::from_slice::<Added>(data) else {
            return;
        };
        let calls_a_tool = matches!(
            item.kind,
            Some(Scalar::Str(ref kind)) if kind == "function_call" || kind == "custom_tool_call"
        );
        match item.name {
            Some(Scalar::Str(name)) if calls_a_tool && !name.is_empty() => {
                self.seen.tools.push(name.into_owned());
            }
            _ => {}
        }
    }

    /// `{"type":"error","code":..,"message":..,"param":..}`; an `error` member, as some
    /// compatible servers send, is read too.
    fn on_responses_error(&mut self, data: &[u8]) {
        #[derive(Deserialize)]
        struct Failure<'a> {
            #[serde(borrow, default)]
            message: Option<Scalar<'a>>,
            #[serde(borrow, default)]
            error: Option<&'a RawValue>,
        }
        let message = match serde_json::from_slice::<Failure>(data) {
            Ok(Failure {
                error: Some(error), ..
            }) => error_message(error),
            Ok(Failure {
                message: Some(Scalar::Str(message)),
                ..
            }) => message.into_owned(),
            _ => lossy(data),
        };
        self.seen.error = Some(message);
    }
}
