//! The mock's behaviour over real HTTP on loopback, as the gateway's tests and the SDK suites rely on it.
//!
//! One integration-test binary (modules below) so the crate links its tests once.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly on the first broken expectation"
)]

mod anthropic;
mod gemini;
mod openai;
mod responses;
mod scripting;
mod server;
mod support;
