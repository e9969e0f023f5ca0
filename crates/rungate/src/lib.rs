//! Rungate: a governance proxy in series between AI agents and LLM providers.
//!
//! The crate is laid out so the architecture reads from the module list. The domain modules
//! (`run`, `policy`, `budget`, `gate`, `audit`) hold pure decisions and never import axum, reqwest or
//! sqlx; `api` is the only place that picks status codes; `store` hides SQL behind one trait per
//! domain; `proxy` is the in-series pipeline for one model call — start reading there.

pub mod analytics; // cost, latency, error and throughput figures derived from recorded steps
pub mod api; // the HTTP surface: proxy routes, admin API, auth, error rendering
pub mod app; // builds the shared state from a Config and serves it until shutdown
pub mod audit; // the run's append-only, hash-chained record
pub mod budget; // money as integers, the run's ledger entries
pub mod cli; // the `rungate` command line: `start` and the operator commands
pub mod config; // what the operator can set: load → validate → Config
pub mod gate; // approval gates: state machine, request fingerprints, conditional rules
pub mod metrics; // the Prometheus registry behind GET /metrics
pub mod money; // UsdNanos: integer money with checked arithmetic
pub mod notify; // approver channels: Slack messages and webhook envelopes for gate events
pub mod policy; // policy documents, versions and the decisions they make
pub mod providers; // upstream adapters and the price table
pub mod proxy; // the governed pipeline for one model call — read this first
pub mod run; // runs and steps: identity, status and the resolution rules
pub mod security; // token hashing, provider-key encryption at rest, Secret<T>
pub mod store; // persistence: one trait per domain, SQLite implementation
pub mod trace; // a run as OpenTelemetry-shaped spans, rebuilt from its record
pub mod webhook; // webhook events, signatures and the retry schedule
