//! `rungate keys ...`: store a provider API key in the gateway and list stored keys. The secret
//! is read from `--api-key`, env `RUNGATE_PROVIDER_API_KEY` or stdin, so the usual way to pass it
//! leaves no trace in shell history; the gateway only ever answers with a masked suffix.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

use super::Ctx;
use super::table::{self, Align, Table, text};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Store a provider API key (secret from --api-key, RUNGATE_PROVIDER_API_KEY or stdin).
    Add {
        /// openai, anthropic, gemini or openai_compatible.
        provider: String,
        /// A name for the key, unique on this gateway.
        #[arg(long)]
        name: String,
        /// The endpoint, without `/v1` (default: the provider's own API; required for
        /// openai_compatible).
        #[arg(long)]
        base_url: Option<String>,
        /// The secret; prefer the env variable or stdin, which stay out of shell history.
        #[arg(long, env = "RUNGATE_PROVIDER_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
    /// List stored keys (only a masked suffix of each secret is shown).
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Each key's circuit breaker: closed, open (skipped until its next probe) or half-open.
    Health,
}

pub async fn run(ctx: &Ctx, command: KeysCommand) -> anyhow::Result<String> {
    match command {
        KeysCommand::Add {
            provider,
            name,
            base_url,
            api_key,
        } => {
            let secret = match api_key {
                Some(secret) => secret,
                None => read_secret(&provider).await?,
            };
            let secret = secret.trim();
            if secret.is_empty() {
                anyhow::bail!("the API key is empty");
            }
            let mut body = json!({ "provider": provider, "name": name, "api_key": secret });
            if let Some(base_url) = base_url {
                body["base_url"] = json!(base_url);
            }
            let created = ctx.client.post(&["provider-keys"], Some(&body)).await?;
            Ok(ctx.show(&created, |v| {
                let key = &v["data"];
                format!(
                    "Stored {} key {} ({}), ending {}.\nPin it to an agent with \
                     `rungate agents create <NAME> --key {}={}`.\n",
                    text(key.get("provider")),
                    text(key.get("name")),
                    text(key.get("id")),
                    text(key.get("key_suffix")),
                    text(key.get("provider")),
                    text(key.get("id")),
                )
            }))
        }
        KeysCommand::List { limit, offset } => {
            let list = ctx
                .client
                .get(&["provider-keys"], &super::paging(limit, offset))
                .await?;
            Ok(ctx.show(&list, render_list))
        }
        KeysCommand::Health => {
            let health = ctx.client.get(&["providers", "health"], &[]).await?;
            Ok(ctx.show(&health, render_health))
        }
    }
}

/// One line from a terminal (with a prompt on stderr), or all of piped stdin.
async fn read_secret(provider: &str) -> anyhow::Result<String> {
    let mut stdin = tokio::io::stdin();
    let mut secret = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("Paste the {provider} API key and press Enter: ");
        tokio::io::BufReader::new(stdin)
            .read_line(&mut secret)
            .await
            .context("cannot read the API key from the terminal")?;
    } else {
        stdin
            .read_to_string(&mut secret)
            .await
            .context("cannot read the API key from stdin")?;
    }
    Ok(secret)
}

fn render_health(body: &Value) -> String {
    let keys = table::items(body);
    let mut out = String::new();
    if !keys.is_empty() {
        let mut table = Table::new(&[
            ("KEY", Align::Left),
            ("NAME", Align::Left),
            ("PROVIDER", Align::Left),
            ("CIRCUIT", Align::Left),
            ("OK", Align::Right),
            ("FAILED", Align::Right),
            ("IN A ROW", Align::Right),
            ("NEXT PROBE", Align::Left),
            ("LAST ERROR", Align::Left),
        ]);
        for key in keys {
            table.row(vec![
                text(key.get("key_id")),
                text(key.get("name")),
                text(key.get("provider")),
                text(key.get("circuit")),
                text(key.get("successes")),
                text(key.get("failures")),
                text(key.get("consecutive_failures")),
                text(key.get("next_probe_at")),
                text(key.get("last_error")),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&table::footer(body, "provider keys"));
    out
}

fn render_list(body: &Value) -> String {
    let keys = table::items(body);
    let mut out = String::new();
    if !keys.is_empty() {
        let mut table = Table::new(&[
            ("ID", Align::Left),
            ("PROVIDER", Align::Left),
            ("NAME", Align::Left),
            ("STATUS", Align::Left),
            ("KEY", Align::Left),
            ("BASE URL", Align::Left),
            ("CREATED", Align::Left),
        ]);
        for key in keys {
            table.row(vec![
                text(key.get("id")),
                text(key.get("provider")),
                text(key.get("name")),
                text(key.get("status")),
                text(key.get("key_suffix")),
                text(key.get("base_url")),
                text(key.get("created_at")),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&table::footer(body, "provider keys"));
    out
}
