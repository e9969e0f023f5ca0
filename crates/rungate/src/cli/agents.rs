//! `rungate agents ...`: create agents and hand out their token (shown once), list them,
//! disable or re-enable them, rotate their token. Calls `/api/agents`.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::{Value, json};

use super::Ctx;
use super::table::{self, Align, Table, text};

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create an agent and print its token (shown only once).
    Create {
        /// A name for the agent, unique on this gateway.
        name: String,
        /// The policy id (pol_...) its runs start under.
        #[arg(long, value_name = "POLICY_ID")]
        policy: Option<String>,
        /// Agents of one team share runs and budgets.
        #[arg(long)]
        team: Option<String>,
        /// Pin a provider key for one provider, e.g. --key openai=pk_...; repeatable.
        #[arg(long = "key", value_name = "PROVIDER=KEY_ID", value_parser = parse_key_pin)]
        keys: Vec<(String, String)>,
    },
    /// List agents, newest first.
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Refuse every further call made with the agent's token (403 agent_disabled).
    Disable { id: String },
    /// Let a disabled agent call again.
    Enable { id: String },
    /// Issue a new token; the old one stops working at once.
    RotateKey { id: String },
}

fn parse_key_pin(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((provider, key_id)) if !provider.trim().is_empty() && !key_id.trim().is_empty() => {
            Ok((provider.trim().to_owned(), key_id.trim().to_owned()))
        }
        _ => Err(format!(
            "expected PROVIDER=KEY_ID, e.g. openai=pk_..., got {raw:?}"
        )),
    }
}

pub async fn run(ctx: &Ctx, command: AgentsCommand) -> anyhow::Result<String> {
    match command {
        AgentsCommand::Create {
            name,
            policy,
            team,
            keys,
        } => {
            let mut body = json!({ "name": name });
            if let Some(policy) = policy {
                body["policy_id"] = json!(policy);
            }
            if let Some(team) = team {
                body["team"] = json!(team);
            }
            if !keys.is_empty() {
                let pins: BTreeMap<String, String> = keys.into_iter().collect();
                body["provider_keys"] = json!(pins);
            }
            let created = ctx.client.post(&["agents"], Some(&body)).await?;
            Ok(ctx.show(&created, |v| render_with_token(v, "Created agent")))
        }
        AgentsCommand::List { limit, offset } => {
            let query = super::paging(limit, offset);
            let list = ctx.client.get(&["agents"], &query).await?;
            Ok(ctx.show(&list, render_list))
        }
        AgentsCommand::Disable { id } => set_status(ctx, &id, "disabled").await,
        AgentsCommand::Enable { id } => set_status(ctx, &id, "active").await,
        AgentsCommand::RotateKey { id } => {
            let rotated = ctx
                .client
                .post(&["agents", &id, "rotate-key"], None)
                .await?;
            Ok(ctx.show(&rotated, |v| {
                render_with_token(v, "Rotated the token of agent")
                    + "The previous token no longer works.\n"
            }))
        }
    }
}

async fn set_status(ctx: &Ctx, id: &str, status: &str) -> anyhow::Result<String> {
    let updated = ctx
        .client
        .put(&["agents", id], &json!({ "status": status }))
        .await?;
    Ok(ctx.show(&updated, |v| {
        let agent = &v["data"];
        format!(
            "Agent {} ({}) is now {}.\n",
            text(agent.get("name")),
            text(agent.get("id")),
            text(agent.get("status")),
        )
    }))
}

fn render_with_token(body: &Value, action: &str) -> String {
    let agent = &body["data"];
    let mut out = format!(
        "{action} {} ({}).\n\n",
        text(agent.get("name")),
        text(agent.get("id"))
    );
    out.push_str(&agent_table(std::slice::from_ref(agent)).render());
    out.push_str(&format!(
        "\nToken: {}\n\nThis token is shown only once: store it now (e.g. in your agent's \
         OPENAI_API_KEY / ANTHROPIC_API_KEY).\n",
        text(agent.get("api_key"))
    ));
    out
}

fn render_list(body: &Value) -> String {
    let agents = table::items(body);
    let mut out = String::new();
    if !agents.is_empty() {
        out.push_str(&agent_table(agents).render());
    }
    out.push_str(&table::footer(body, "agents"));
    out
}

fn agent_table(agents: &[Value]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("STATUS", Align::Left),
        ("TEAM", Align::Left),
        ("POLICY", Align::Left),
        ("PROVIDER KEYS", Align::Left),
        ("TOKEN PREFIX", Align::Left),
        ("CREATED", Align::Left),
    ]);
    for agent in agents {
        let keys = agent
            .get("provider_keys")
            .and_then(Value::as_object)
            .filter(|pins| !pins.is_empty())
            .map_or_else(
                || "-".to_owned(),
                |pins| {
                    pins.iter()
                        .map(|(provider, key)| format!("{provider}={}", text(Some(key))))
                        .collect::<Vec<_>>()
                        .join(",")
                },
            );
        table.row(vec![
            text(agent.get("id")),
            text(agent.get("name")),
            text(agent.get("status")),
            text(agent.get("team")),
            text(agent.get("policy_id")),
            keys,
            text(agent.get("key_prefix")),
            text(agent.get("created_at")),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pins_are_provider_equals_key_id() {
        assert_eq!(
            parse_key_pin("openai=pk_1"),
            Ok(("openai".to_owned(), "pk_1".to_owned()))
        );
        assert!(parse_key_pin("openai").is_err());
        assert!(parse_key_pin("=pk_1").is_err());
        assert!(parse_key_pin("openai=").is_err());
    }

    #[test]
    fn a_created_agent_shows_its_token_once_with_a_warning() {
        let body = json!({"data": {
            "id": "agt_1", "name": "bot", "status": "active", "team": null, "policy_id": null,
            "provider_keys": {"openai": "pk_1"}, "key_prefix": "rg_agt_abcde",
            "created_at": "2025-01-01T00:00:00Z", "api_key": "rg_agt_secret",
        }});
        let out = render_with_token(&body, "Created agent");
        assert!(out.starts_with("Created agent bot (agt_1).\n"));
        assert!(out.contains("openai=pk_1"));
        assert!(out.contains("Token: rg_agt_secret\n"));
        assert!(out.contains("shown only once"));
    }
}
