//! A fake OpenAI, Anthropic and Gemini server on loopback.
//!
//! Rungate is a proxy in series: its tests and benchmarks need an upstream that answers like the real
//! providers (same JSON shapes, same stream framing, same error bodies) but deterministically, instantly
//! and offline. Each Rust test starts its own [`MockUpstream`] on `127.0.0.1:0`; the `mock-upstream`
//! binary serves the Python and JS SDK suites and the benchmark.
//!
//! | route | dialect | key (with [`MockConfig::require_key`]) |
//! | --- | --- | --- |
//! | `POST /v1/chat/completions`, `GET /v1/models` | OpenAI Chat Completions | `Authorization: Bearer K` |
//! | `POST /v1/responses` | OpenAI Responses | `Authorization: Bearer K` |
//! | `POST /v1/messages`, `POST /v1/messages/count_tokens` | Anthropic Messages | `x-api-key: K` or bearer |
//! | `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent` (`?alt=sse` for SSE, else a streamed JSON array), `:countTokens`; the same under `/v1/models/` | Gemini | `x-goog-api-key: K` or `?key=K` |
//!
//! Replies are a pure function of the request: the text is `"Echo: "` plus the last user message (a
//! tool result is not a user message), token counts follow a fixed formula, and a `"mock"` object in
//! the request body (a top-level member in every dialect, Gemini's included) scripts everything else:
//! latency, usage, error status, tool calls, a stream that dies, a request that hangs. Because the
//! gateway forwards unknown fields untouched, that object reaching the mock also proves pass-through.
//! Errors, a wrong key's 401 included, are in the caller's dialect.
//!
//! This crate knows nothing about Rungate itself; it speaks only the providers' wire formats.
//!
//! # Scripting a request
//! All fields of the `"mock"` object are optional; an unknown one is a 400, so typos fail loudly.
//!
//! | field | effect |
//! | --- | --- |
//! | `latency_ms`, `chunk_delay_ms` | override [`MockConfig::latency`] / [`MockConfig::chunk_delay`] |
//! | `usage: {input_tokens, output_tokens}` | report these counts instead of the computed ones (either may be left out) |
//! | `status: N` | answer N with the provider's error body (429 adds `retry-after: 1`) |
//! | `die_after_events: K` | streaming: send K events (Gemini's JSON-array form: K chunks), then break the connection mid-body |
//! | `hang: true` | never answer (an hour; other requests are unaffected) |
//! | `tool_call: {name, arguments}` | answer with this tool call; `arguments` is an object, or a string sent verbatim |
//!
//! Without `tool_call`, a request that declares tools and ends with a user message containing
//! "use tool" gets a call to its first named tool with arguments `{}`.
//!
//! # A default script for every request
//! [`MockConfig::default_script`] (the binary's `--script '<json>'`) is a `"mock"` object applied to
//! every model call, for an upstream that must fail whatever body the gateway sends it (a failover
//! primary that always answers 503, or hangs): a gateway translating between dialects may not carry a
//! per-request `"mock"` member across. A request's own `"mock"` object is merged over the default
//! member by member: each member it names replaces the default's (a whole value, no deep merge), a
//! member set to `null` clears the default's, and the others stay. The default is checked when the
//! server starts.
//!
//! Order of checks: API key (401) → JSON (400) → hang → latency → status → reply.

mod anthropic; // POST /v1/messages and /v1/messages/count_tokens in Anthropic's shapes
mod auth; // the optional API-key check, in each provider's convention
mod conversation; // each provider's request layout read into one neutral conversation
mod dialect; // the request → response flow all providers share: key, parse, script, latency, render
mod gemini; // POST /v1beta/models/{model}:{generateContent,streamGenerateContent,countTokens}, and /v1/
mod openai; // POST /v1/chat/completions and GET /v1/models in OpenAI's shapes
mod plan; // what one request asks for: reply, usage, timing and failure; the default script
mod query; // the URL query parameters the mock reads (Gemini's alt and key)
mod record; // every request received (method, path and query, headers, body), for tests to inspect
mod responses; // POST /v1/responses in OpenAI's Responses shapes and typed event stream
mod server; // bind, accept with TCP_NODELAY, route, stop
mod sse; // server-sent-event bodies that honour delays and can die mid-stream

pub use record::RecordedRequest;
pub use server::{MockConfig, MockUpstream, Recording};
