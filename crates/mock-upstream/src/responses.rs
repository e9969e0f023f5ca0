//! OpenAI's Responses endpoint (`POST /v1/responses`), in the shapes the official SDKs and
//! `openai-agents` parse.
//!
//! The response object carries every top-level member api.openai.com sends, the request's settings
//! echoed back (`tools`, `tool_choice`, `instructions`, `text`, ...) or their defaults. A stream is
//! Responses' typed-event grammar: every event named by its `type` and numbered by `sequence_number`
//! from 0, the usage only in the closing `response.completed`, and no `[DONE]` sentinel. Keys and
//! errors are OpenAI's, as for Chat Completions.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::conversation::{self, Conversation};
use crate::dialect::{self, Dialect, SharedState};
use crate::plan::{self, Answer, BadRequest, Plan, Usage};
use crate::{auth, openai, sse};

pub(crate) struct Responses;

/// `POST /v1/responses`
pub(crate) async fn post_responses(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dialect::answer(&Responses, &shared, &headers, &body).await
}

impl Dialect for Responses {
    const BAD_KEY_MESSAGE: &'static str = "Incorrect API key provided";

    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        auth::bearer_matches(headers, key)
    }

    fn read(&self, body: &[u8]) -> Result<Conversation, BadRequest> {
        conversation::from_responses(body)
    }

    fn error_body(&self, status: StatusCode, message: &str) -> Vec<u8> {
        openai::error_body(status, message)
    }

    fn reply_body(&self, plan: &Plan, id: u64) -> Vec<u8> {
        let ids = Ids::new(id);
        let item = ids.item(&plan.answer, Progress::Completed);
        let response =
            response_object(plan, &ids, Progress::Completed, std::slice::from_ref(&item));
        let mut out = Vec::with_capacity(1024);
        sse::write_json(&mut out, &response);
        out
    }

    fn reply_events(&self, plan: &Plan, id: u64) -> Vec<Bytes> {
        let ids = Ids::new(id);
        let mut stream = Stream {
            events: Vec::with_capacity(16),
            next: 0,
        };
        let opening = response_object(plan, &ids, Progress::InProgress, &[]);
        stream.push(|n| Event::Created {
            sequence_number: n,
            response: &opening,
        });
        stream.push(|n| Event::InProgress {
            sequence_number: n,
            response: &opening,
        });
        let started = ids.item(&plan.answer, Progress::InProgress);
        stream.push(|n| Event::OutputItemAdded {
            sequence_number: n,
            output_index: 0,
            item: &started,
        });
        match &plan.answer {
            Answer::Text(text) => text_events(&mut stream, &ids, text),
            Answer::ToolCall(call) => arguments_events(&mut stream, &ids, call),
        }
        let finished = ids.item(&plan.answer, Progress::Completed);
        stream.push(|n| Event::OutputItemDone {
            sequence_number: n,
            output_index: 0,
            item: &finished,
        });
        let output = std::slice::from_ref(&finished);
        let closing = response_object(plan, &ids, Progress::Completed, output);
        stream.push(|n| Event::Completed {
            sequence_number: n,
            response: &closing,
        });
        stream.events
    }
}

fn text_events(stream: &mut Stream, ids: &Ids, text: &str) {
    let part = |text| OutputText::new(text);
    let empty = part("");
    stream.push(|n| Event::ContentPartAdded {
        sequence_number: n,
        item_id: &ids.message,
        output_index: 0,
        content_index: 0,
        part: &empty,
    });
    for piece in plan::word_pieces(text) {
        stream.push(|n| Event::OutputTextDelta {
            sequence_number: n,
            item_id: &ids.message,
            output_index: 0,
            content_index: 0,
            delta: piece,
            logprobs: [],
        });
    }
    stream.push(|n| Event::OutputTextDone {
        sequence_number: n,
        item_id: &ids.message,
        output_index: 0,
        content_index: 0,
        text,
        logprobs: [],
    });
    let full = part(text);
    stream.push(|n| Event::ContentPartDone {
        sequence_number: n,
        item_id: &ids.message,
        output_index: 0,
        content_index: 0,
        part: &full,
    });
}

fn arguments_events(stream: &mut Stream, ids: &Ids, call: &plan::ToolCall) {
    for piece in plan::json_pieces(&call.arguments) {
        stream.push(|n| Event::FunctionCallArgumentsDelta {
            sequence_number: n,
            item_id: &ids.function_call,
            output_index: 0,
            delta: piece,
        });
    }
    stream.push(|n| Event::FunctionCallArgumentsDone {
        sequence_number: n,
        item_id: &ids.function_call,
        output_index: 0,
        name: &call.name,
        arguments: &call.arguments,
    });
}

/// The events of one stream, numbered as they are added.
struct Stream {
    events: Vec<Bytes>,
    next: u64,
}

impl Stream {
    fn push<'a>(&mut self, event: impl FnOnce(u64) -> Event<'a>) {
        let event = event(self.next);
        self.next += 1;
        self.events.push(sse::named_event(event.name(), &event));
    }
}

/// The ids one reply uses, derived from the server's request number.
struct Ids {
    response: String,
    message: String,
    function_call: String,
    call: String,
}

impl Ids {
    fn new(id: u64) -> Ids {
        Ids {
            response: format!("resp_mock_{id}"),
            message: format!("msg_mock_{id}"),
            function_call: format!("fc_mock_{id}"),
            call: format!("call_mock_{id}"),
        }
    }

    /// The one output item of a reply; in progress it has no text or arguments yet.
    fn item<'a>(&'a self, answer: &'a Answer, progress: Progress) -> OutputItem<'a> {
        let done = progress == Progress::Completed;
        match answer {
            Answer::Text(text) => OutputItem::Message {
                id: &self.message,
                status: progress.as_str(),
                role: "assistant",
                content: if done {
                    vec![OutputText::new(text)]
                } else {
                    Vec::new()
                },
            },
            Answer::ToolCall(call) => OutputItem::FunctionCall {
                id: &self.function_call,
                call_id: &self.call,
                name: &call.name,
                arguments: if done { &call.arguments } else { "" },
                status: progress.as_str(),
            },
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    InProgress,
    Completed,
}

impl Progress {
    fn as_str(self) -> &'static str {
        match self {
            Progress::InProgress => "in_progress",
            Progress::Completed => "completed",
        }
    }
}

fn response_object<'a>(
    plan: &'a Plan,
    ids: &'a Ids,
    progress: Progress,
    output: &'a [OutputItem<'a>],
) -> ResponseObject<'a> {
    let echo = |name| plan.echoed(name);
    ResponseObject {
        id: &ids.response,
        object: "response",
        created_at: dialect::unix_now(),
        status: progress.as_str(),
        background: false,
        error: (),
        incomplete_details: (),
        instructions: Echoed::new(echo("instructions"), ()),
        max_output_tokens: Echoed::new(echo("max_output_tokens"), ()),
        max_tool_calls: (),
        model: &plan.model,
        output,
        parallel_tool_calls: Echoed::new(echo("parallel_tool_calls"), true),
        previous_response_id: Echoed::new(echo("previous_response_id"), ()),
        prompt_cache_key: (),
        reasoning: Echoed::new(
            echo("reasoning"),
            Reasoning {
                effort: (),
                summary: (),
            },
        ),
        safety_identifier: (),
        service_tier: "default",
        store: Echoed::new(echo("store"), true),
        temperature: Echoed::new(echo("temperature"), 1.0),
        text: Echoed::new(
            echo("text"),
            TextConfig {
                format: TextFormat { kind: "text" },
                verbosity: "medium",
            },
        ),
        tool_choice: Echoed::new(echo("tool_choice"), "auto"),
        tools: Echoed::new(echo("tools"), []),
        top_logprobs: 0,
        top_p: Echoed::new(echo("top_p"), 1.0),
        truncation: Echoed::new(echo("truncation"), "disabled"),
        usage: (progress == Progress::Completed).then(|| WireUsage::from(plan.usage)),
        user: Echoed::new(echo("user"), ()),
        metadata: Echoed::new(echo("metadata"), EmptyObject {}),
    }
}

/// A response member that repeats the request's value, or the API's default when it sent none.
#[derive(Serialize)]
#[serde(untagged)]
enum Echoed<'a, D> {
    Request(&'a Value),
    Default(D),
}

impl<'a, D> Echoed<'a, D> {
    fn new(request: Option<&'a Value>, default: D) -> Self {
        request.map_or(Echoed::Default(default), Echoed::Request)
    }
}

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    background: bool,
    error: (),
    incomplete_details: (),
    instructions: Echoed<'a, ()>,
    max_output_tokens: Echoed<'a, ()>,
    max_tool_calls: (),
    model: &'a str,
    output: &'a [OutputItem<'a>],
    parallel_tool_calls: Echoed<'a, bool>,
    previous_response_id: Echoed<'a, ()>,
    prompt_cache_key: (),
    reasoning: Echoed<'a, Reasoning>,
    safety_identifier: (),
    service_tier: &'static str,
    store: Echoed<'a, bool>,
    temperature: Echoed<'a, f64>,
    text: Echoed<'a, TextConfig>,
    tool_choice: Echoed<'a, &'static str>,
    tools: Echoed<'a, [(); 0]>,
    top_logprobs: u32,
    top_p: Echoed<'a, f64>,
    truncation: Echoed<'a, &'static str>,
    /// `null` until the response is complete.
    usage: Option<WireUsage>,
    user: Echoed<'a, ()>,
    metadata: Echoed<'a, EmptyObject>,
}

#[derive(Serialize)]
struct Reasoning {
    effort: (),
    summary: (),
}

#[derive(Serialize)]
struct TextConfig {
    format: TextFormat,
    verbosity: &'static str,
}

#[derive(Serialize)]
struct TextFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutputItem<'a> {
    Message {
        id: &'a str,
        status: &'static str,
        role: &'static str,
        content: Vec<OutputText<'a>>,
    },
    FunctionCall {
        id: &'a str,
        call_id: &'a str,
        name: &'a str,
        arguments: &'a str,
        status: &'static str,
    },
}

#[derive(Serialize)]
struct OutputText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    annotations: [(); 0],
    logprobs: [(); 0],
    text: &'a str,
}

impl<'a> OutputText<'a> {
    fn new(text: &'a str) -> Self {
        OutputText {
            kind: "output_text",
            annotations: [],
            logprobs: [],
            text,
        }
    }
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    input_tokens_details: InputTokensDetails,
    output_tokens: u64,
    output_tokens_details: OutputTokensDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct InputTokensDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct OutputTokensDetails {
    reasoning_tokens: u64,
}

impl From<Usage> for WireUsage {
    fn from(usage: Usage) -> Self {
        WireUsage {
            input_tokens: usage.input_tokens,
            input_tokens_details: InputTokensDetails { cached_tokens: 0 },
            output_tokens: usage.output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: 0,
            },
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
        }
    }
}

/// One streamed event; its `type` field doubles as the SSE `event:` name.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Event<'a> {
    #[serde(rename = "response.created")]
    Created {
        sequence_number: u64,
        response: &'a ResponseObject<'a>,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        sequence_number: u64,
        response: &'a ResponseObject<'a>,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        sequence_number: u64,
        output_index: u32,
        item: &'a OutputItem<'a>,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        content_index: u32,
        part: &'a OutputText<'a>,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        content_index: u32,
        delta: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        content_index: u32,
        text: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        content_index: u32,
        part: &'a OutputText<'a>,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        delta: &'a str,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: u32,
        name: &'a str,
        arguments: &'a str,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        sequence_number: u64,
        output_index: u32,
        item: &'a OutputItem<'a>,
    },
    #[serde(rename = "response.completed")]
    Completed {
        sequence_number: u64,
        response: &'a ResponseObject<'a>,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "response.created",
            Event::InProgress { .. } => "response.in_progress",
            Event::OutputItemAdded { .. } => "response.output_item.added",
            Event::ContentPartAdded { .. } => "response.content_part.added",
            Event::OutputTextDelta { .. } => "response.output_text.delta",
            Event::OutputTextDone { .. } => "response.output_text.done",
            Event::ContentPartDone { .. } => "response.content_part.done",
            Event::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Event::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Event::OutputItemDone { .. } => "response.output_item.done",
            Event::Completed { .. } => "response.completed",
        }
    }
}
