//! What Rungate knows about the provider wire formats (OpenAI Chat Completions and Responses,
//! Anthropic Messages, Google Gemini), and nothing else: no I/O, no policy, no money. The gateway
//! calls into this crate on every proxied request, so it reads only the fields governance needs
//! (borrowed, skipping the rest), rewrites a body only when it must, and passes streamed bytes
//! through untouched unless something has to be hidden.
//!
//! Map of the crate:
//! - [`request`]: facts about an incoming request body, and the few rewrites Rungate may apply;
//!   for Gemini, also what the URL path says (model, method).
//! - [`usage`]: token usage of a non-streaming answer.
//! - [`answer`]: the tools a non-streaming answer proposes to call.
//! - [`stream`]: the tee between the upstream's SSE stream and the client, plus the events
//!   Rungate itself appends (its trailer, a mid-stream error); the Responses and Gemini event
//!   readers are its submodules.
//! - [`translate`]: requests, answers, streams and errors rewritten between dialects, so a call
//!   can fail over to another vendor while the client keeps its own format.
//! - `sse` (private): incremental SSE framing shared by the tee.
//! - `lenient` (private): JSON readers that accept any shape and keep what they understand.

pub mod answer;
mod lenient;
pub mod request;
mod sse;
pub mod stream;
pub mod translate;
pub mod usage;

pub use answer::{ProposedCall, parse_arguments, proposed_calls, proposed_tools, streamed_calls};
pub use request::{GeminiMethod, GeminiPath};
pub use request::{RequestFacts, Rewrite, WireError, inspect_request, rewrite_request};
pub use stream::{RungateTrailer, StreamTap, TrailerTokens, rungate_event, stream_error_event};
pub use translate::{
    RequestOptions, ResponseOptions, StreamTranslator, TranslateError, translate_error,
    translate_request, translate_response,
};
pub use usage::{Usage, usage_from_body};

/// The wire format a client speaks and an upstream answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI Chat Completions (and OpenAI-compatible endpoints).
    OpenAi,
    /// Anthropic Messages (including `count_tokens`).
    Anthropic,
    /// OpenAI Responses (`POST /v1/responses`), which the OpenAI Agents SDK and Codex speak.
    Responses,
    /// Google Gemini `generateContent` / `streamGenerateContent` (the model is in the URL).
    Gemini,
}
