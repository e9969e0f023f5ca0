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
