//! `rungate runs ...`: list runs across agents, show one run with its steps, force-stop a run
//! (its later calls get 403 `run_force_stopped`). Calls `/api/runs`.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::Ctx;
use super::table::{self, Align, Table, text, usd};

/// The most steps the admin API returns in one page.
const STEP_PAGE: u32 = 1000;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only the runs of this agent id.
        #[arg(long, value_name = "AGENT_ID")]
        agent: Option<String>,
        #[arg(long, value_enum)]
        status: Option<RunStatusArg>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Show a run and its steps.
    Show { run_id: String },
    /// Force-stop a run: its later calls are refused.
    Stop { run_id: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RunStatusArg {
    Running,
    Completed,
    Stopped,
}

impl RunStatusArg {
    fn as_str(self) -> &'static str {
        match self {
            RunStatusArg::Running => "running",
            RunStatusArg::Completed => "completed",
            RunStatusArg::Stopped => "stopped",
        }
    }
}

pub async fn run(ctx: &Ctx, command: RunsCommand) -> anyhow::Result<String> {
    match command {
        RunsCommand::List {
            agent,
            status,
            limit,
            offset,
        } => {
            let mut query = super::paging(limit, offset);
            if let Some(agent) = agent {
                query.push(("agent_id", agent));
            }
            if let Some(status) = status {
                query.push(("status", status.as_str().to_owned()));
            }
            let list = ctx.client.get(&["runs"], &query).await?;
            Ok(ctx.show(&list, render_list))
        }
        RunsCommand::Show { run_id } => {
            let run = ctx.client.get(&["runs", &run_id], &[]).await?;
            let steps = ctx
                .client
                .get(
                    &["runs", &run_id, "steps"],
                    &[("limit", STEP_PAGE.to_string())],
                )
                .await?;
            let both = json!({ "run": run["data"], "steps": steps });
            Ok(ctx.show(&both, render_show))
        }
        RunsCommand::Stop { run_id } => {
            let stopped = ctx.client.post(&["runs", &run_id, "stop"], None).await?;
            Ok(ctx.show(&stopped, |v| {
                let run = &v["data"];
                format!(
                    "Run {} is {} ({}); spent {} USD.\n",
                    text(run.get("id")),
                    text(run.get("status")),
                    text(run.get("ended_reason")),
                    usd(run.get("spend_usd")),
                )
            }))
        }
    }
}

fn render_list(body: &Value) -> String {
    let runs = table::items(body);
    let mut out = String::new();
    if !runs.is_empty() {
        let mut table = Table::new(&[
            ("RUN ID", Align::Left),
            ("AGENT", Align::Left),
            ("STATUS", Align::Left),
            ("STEPS", Align::Right),
            ("TOKENS IN", Align::Right),
            ("TOKENS OUT", Align::Right),
            ("COST USD", Align::Right),
            ("LIMIT USD", Align::Right),
            ("STARTED", Align::Left),
            ("LAST ACTIVITY", Align::Left),
        ]);
        for run in runs {
            table.row(vec![
                text(run.get("id")),
                text(run.get("agent_id")),
                text(run.get("status")),
                text(run.get("steps_count")),
                text(run.pointer("/tokens/input")),
                text(run.pointer("/tokens/output")),
                usd(run.get("spend_usd")),
                usd(run.get("budget_limit_usd")),
                text(run.get("started_at")),
                text(run.get("last_activity_at")),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&table::footer(body, "runs"));
    out
}

/// The run as `field: value` lines, then its steps table.
fn render_show(body: &Value) -> String {
    let run = &body["run"];
    let lines = [
        ("id", text(run.get("id"))),
        ("agent", text(run.get("agent_id"))),
        ("team", text(run.get("team"))),
        ("status", text(run.get("status"))),
        ("ended reason", text(run.get("ended_reason"))),
        (
            "policy",
            match run.get("policy_version").and_then(Value::as_i64) {
                Some(version) => format!("{} v{version}", text(run.get("policy_id"))),
                None => text(run.get("policy_id")),
            },
        ),
        ("spend usd", usd(run.get("spend_usd"))),
        ("limit usd", usd(run.get("budget_limit_usd"))),
        ("remaining usd", usd(run.get("budget_remaining_usd"))),
        (
            "tokens in/out",
            format!(
                "{} / {}",
                text(run.pointer("/tokens/input")),
                text(run.pointer("/tokens/output"))
            ),
        ),
        ("steps", text(run.get("steps_count"))),
        ("started", text(run.get("started_at"))),
        ("last activity", text(run.get("last_activity_at"))),
        ("ended", text(run.get("ended_at"))),
    ];
    let mut out = table::fields(&lines);
    out.push('\n');
    let steps = table::items(&body["steps"]);
    let total = body["steps"]["total"].as_u64().unwrap_or(0);
    if steps.is_empty() {
        out.push_str("no steps\n");
    } else {
        out.push_str(&steps_table(steps).render());
        if total > steps.len() as u64 {
            out.push_str(&format!(
                "showing the first {} of {total} steps\n",
                steps.len()
            ));
        }
    }
    out
}

fn steps_table(steps: &[Value]) -> Table {
    let mut table = Table::new(&[
        ("STEP ID", Align::Left),
        ("TYPE", Align::Left),
        ("MODEL", Align::Left),
        ("TOKENS IN", Align::Right),
        ("TOKENS OUT", Align::Right),
        ("COST USD", Align::Right),
        ("LATENCY MS", Align::Right),
        ("STATUS", Align::Left),
        ("CREATED", Align::Left),
    ]);
    for step in steps {
        table.row(vec![
            text(step.get("id")),
            text(step.get("type")),
            text(step.get("model")),
            text(step.pointer("/tokens/input")),
            text(step.pointer("/tokens/output")),
            usd(step.get("cost_usd")),
            text(step.get("latency_ms")),
            text(step.get("status")),
            text(step.get("created_at")),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_run_lists_its_steps_with_tokens_cost_and_latency() {
        let body = json!({
            "run": {"id": "run_1", "agent_id": "agt_1", "status": "running", "spend_usd": 0.0015,
                    "tokens": {"input": 10, "output": 20}, "steps_count": 1,
                    "policy_id": "pol_1", "policy_version": 3},
            "steps": {"data": [{"id": "stp_1", "type": "llm_call", "model": "gpt-4o",
                                "tokens": {"input": 10, "output": 20}, "cost_usd": 0.0015,
                                "latency_ms": 42, "status": "success",
                                "created_at": "2025-01-01T00:00:00Z"}], "total": 1},
        });
        let out = render_show(&body);
        assert!(out.starts_with("id:            run_1\n"), "{out}");
        assert!(out.contains("policy:        pol_1 v3\n"), "{out}");
        assert!(out.contains("spend usd:     0.001500\n"), "{out}");
        assert!(out.contains(
            "STEP ID  TYPE      MODEL   TOKENS IN  TOKENS OUT  COST USD  LATENCY MS  STATUS   CREATED\n\
             stp_1    llm_call  gpt-4o         10          20  0.001500          42  success  2025-01-01T00:00:00Z\n"
        ), "{out}");
    }
}
