//! `rungate approvals ...`: the approver's commands — list pending (or any) approval requests,
//! approve or reject one with a reason. Calls `/api/approval-requests`; the token needs the
//! `approve` (or `write`) scope to decide.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::Ctx;
use super::table::{self, Align, Table, text};

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approval requests, newest first (pending ones by default).
    List {
        #[arg(long, value_enum, default_value = "pending")]
        status: GateStatusArg,
        /// Only the requests of this run.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Approve a request: the agent's next identical retry goes through, once.
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// For a budget request: the run's new USD cap (default: what the paused call needs).
        #[arg(long, value_name = "USD")]
        hard_limit_usd: Option<f64>,
    },
    /// Reject a request: the agent's retry gets 403 approval_rejected with the reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GateStatusArg {
    Pending,
    Approved,
    Rejected,
    Expired,
    All,
}

pub async fn run(ctx: &Ctx, command: ApprovalsCommand) -> anyhow::Result<String> {
    match command {
        ApprovalsCommand::List {
            status,
            run,
            limit,
            offset,
        } => {
            let mut query = super::paging(limit, offset);
            let status = match status {
                GateStatusArg::Pending => Some("pending"),
                GateStatusArg::Approved => Some("approved"),
                GateStatusArg::Rejected => Some("rejected"),
                GateStatusArg::Expired => Some("expired"),
                GateStatusArg::All => None,
            };
            if let Some(status) = status {
                query.push(("status", status.to_owned()));
            }
            if let Some(run) = run {
                query.push(("run_id", run));
            }
            let list = ctx.client.get(&["approval-requests"], &query).await?;
            Ok(ctx.show(&list, render_list))
        }
        ApprovalsCommand::Approve {
            id,
            reason,
            hard_limit_usd,
        } => {
            let body = json!({"reason": reason, "hard_limit_usd": hard_limit_usd});
            decide(ctx, &id, "approve", body).await
        }
        ApprovalsCommand::Reject { id, reason } => {
            decide(ctx, &id, "reject", json!({"reason": reason})).await
        }
    }
}

async fn decide(ctx: &Ctx, id: &str, verb: &str, body: Value) -> anyhow::Result<String> {
    let decided = ctx
        .client
        .post(&["approval-requests", id, verb], Some(&body))
        .await?;
    Ok(ctx.show(&decided, |v| {
        let gate = &v["data"];
        format!(
            "Approval request {} for {} in run {} is {} (by {}).\n",
            text(gate.get("id")),
            text(gate.get("tool")),
            text(gate.get("run_id")),
            text(gate.get("status")),
            text(gate.get("decided_by")),
        )
    }))
}

fn render_list(body: &Value) -> String {
    let gates = table::items(body);
    let mut out = String::new();
    if !gates.is_empty() {
        let mut table = Table::new(&[
            ("ID", Align::Left),
            ("RUN", Align::Left),
            ("TOOL", Align::Left),
            ("RULE", Align::Left),
            ("ARGS", Align::Left),
            ("STATUS", Align::Left),
            ("EXPIRES", Align::Left),
        ]);
        for gate in gates {
            table.row(vec![
                text(gate.get("id")),
                text(gate.get("run_id")),
                text(gate.get("tool")),
                text(gate.get("rule")),
                gate.pointer("/proposed_action/args")
                    .filter(|a| !a.is_null())
                    .map_or_else(|| "-".to_owned(), Value::to_string),
                text(gate.get("status")),
                text(gate.get("expires_at")),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&table::footer(body, "approval requests"));
    out
}
