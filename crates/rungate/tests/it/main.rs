//! The one integration-test binary: a real gateway, real SQLite, the Rust mock provider on
//! loopback. Test names say what a user would notice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod analytics;
mod audit;
mod budget;
mod cli;
mod contract;
mod crash;
mod dashboard_assets;
mod dashboard_session;
mod db_copy;
mod docs;
mod errors;
mod failover;
mod gates;
mod harness;
mod pg;
mod prices;
mod process;
mod proxy_anthropic;
mod proxy_openai;
mod responses;
mod rules;
mod runs;
mod scale_out;
mod webhooks;
