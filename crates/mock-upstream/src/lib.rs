//! A fake OpenAI and Anthropic server on loopback.
//!
//! Rungate is a proxy in series: its tests and benchmarks need an upstream that answers like the real
//! providers (same JSON shapes, same SSE framing, same error bodies) but deterministically, instantly and
//! offline. Each Rust test starts its own [`MockUpstream`] on `127.0.0.1:0`; the `mock-upstream` binary
//! serves the Python SDK suites and the benchmark.
//!
//! Replies are a pure function of the request: the text is `"Echo: "` plus the last user message, token
//! counts follow a fixed formula, and a `"mock"` object in the request body scripts everything else
//! (latency, usage, error status, tool calls, a stream that dies, a request that hangs). Because the gateway
//! forwards unknown fields untouched, that object reaching the mock also proves pass-through.
//!
//! This crate knows nothing about Rungate itself; it speaks only the providers' wire formats.
//!
//! # Scripting a request
//! All fields of the body's `"mock"` object are optional; an unknown one is a 400, so typos fail loudly.
//!
//! | field | effect |
//! | --- | --- |
//! | `latency_ms`, `chunk_delay_ms` | override [`MockConfig::latency`] / [`MockConfig::chunk_delay`] |
//! | `usage: {input_tokens, output_tokens}` | report these counts instead of the computed ones (either may be left out) |
//! | `status: N` | answer N with the provider's error body (429 adds `retry-after: 1`) |
//! | `die_after_events: K` | streaming: send K events, then break the connection mid-body |
//! | `hang: true` | never answer (an hour; other requests are unaffected) |
//! | `tool_call: {name, arguments}` | answer with this tool call; `arguments` is an object, or a string sent verbatim |
//!
//! Without `tool_call`, a request that declares `tools` and ends with a user message containing
//! "use tool" gets a call to its first tool with arguments `{}`.
//!
//! Order of checks: API key (401) → JSON (400) → hang → latency → status → reply.

mod anthropic; // POST /v1/messages and /v1/messages/count_tokens in Anthropic's shapes
mod auth; // the optional API-key check, in each provider's header convention
mod dialect; // the request → response flow both providers share: key, parse, script, latency, render
mod openai; // POST /v1/chat/completions and GET /v1/models in OpenAI's shapes
mod plan; // what one request asks for: reply, usage, timing and failure, read from its body
mod record; // every request received, for tests to inspect
mod server; // bind, accept with TCP_NODELAY, route, stop
mod sse; // server-sent-event bodies that honour delays and can die mid-stream

pub use record::RecordedRequest;
pub use server::{MockConfig, MockUpstream, Recording};
