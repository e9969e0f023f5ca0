//! `rungate audit ...`: prove a run's record and take it away. `verify` recomputes the hash chain
//! on the server and exits non-zero when it does not hold; `export` writes every event, oldest
//! first, one JSON object per line, for archives and external checks.

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use super::Ctx;
use super::table::text;

/// Events fetched per page while exporting.
const PAGE: usize = 1000;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that a run's audit chain holds; names the first bad event if not.
    Verify { run_id: String },
    /// Write a run's audit events, oldest first.
    Export {
        run_id: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

pub async fn run(ctx: &Ctx, command: AuditCommand) -> anyhow::Result<String> {
    match command {
        AuditCommand::Verify { run_id } => {
            let verdict = ctx
                .client
                .get(&["runs", &run_id, "audit", "verify"], &[])
                .await?;
            let data = &verdict["data"];
            if data["valid"] != Value::Bool(true) {
                anyhow::bail!(
                    "the audit chain of run {run_id} does not hold: event {} {} ({} events)",
                    text(data.get("broken_at_seq")),
                    text(data.get("reason")),
                    text(data.get("events")),
                );
            }
            Ok(ctx.show(&verdict, |v| {
                format!(
                    "The audit chain of run {run_id} holds: {} events, head {}.\n",
                    text(v.pointer("/data/events")),
                    text(v.pointer("/data/head")),
                )
            }))
        }
        AuditCommand::Export { run_id, format } => {
            let ExportFormat::Jsonl = format;
            let mut out = String::new();
            let mut offset = 0;
            loop {
                let page = ctx
                    .client
                    .get(
                        &["runs", &run_id, "audit"],
                        &[("limit", PAGE.to_string()), ("offset", offset.to_string())],
                    )
                    .await?;
                let events = page["data"].as_array().cloned().unwrap_or_default();
                for event in &events {
                    out.push_str(&event.to_string());
                    out.push('\n');
                }
                offset += events.len();
                let total = page["total"].as_u64().unwrap_or(0) as usize;
                if events.is_empty() || offset >= total {
                    break;
                }
            }
            Ok(out)
        }
    }
}
