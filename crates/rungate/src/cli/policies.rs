//! `rungate policies ...`: create a policy from a JSON or YAML file (SPEC §4) and list
//! policies. Calls `/api/policies`; the gateway validates the document and names the field at
//! fault.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::Ctx;
use super::table::{self, Align, Table, text, usd};

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Create a policy from a document file (.json, or YAML otherwise).
    Create {
        /// The policy's name; overrides any `name` in the file.
        name: String,
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List policies (latest version of each).
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
}

pub async fn run(ctx: &Ctx, command: PoliciesCommand) -> anyhow::Result<String> {
    match command {
        PoliciesCommand::Create { name, file } => {
            let mut document = read_document(&file)?;
            let Some(fields) = document.as_object_mut() else {
                anyhow::bail!("{}: a policy document must be a mapping", file.display());
            };
            fields.insert("name".into(), json!(name));
            let created = ctx.client.post(&["policies"], Some(&document)).await?;
            Ok(ctx.show(&created, |v| {
                let policy = &v["data"];
                format!(
                    "Created policy {} ({}) version {}.\nAttach it with \
                     `rungate agents create <NAME> --policy {}`.\n",
                    text(policy.get("name")),
                    text(policy.get("id")),
                    text(policy.get("version")),
                    text(policy.get("id")),
                )
            }))
        }
        PoliciesCommand::List { limit, offset } => {
            let list = ctx
                .client
                .get(&["policies"], &super::paging(limit, offset))
                .await?;
            Ok(ctx.show(&list, render_list))
        }
    }
}

fn read_document(path: &Path) -> anyhow::Result<Value> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(&raw).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        serde_norway::from_str(&raw)
            .with_context(|| format!("{} is not valid YAML", path.display()))
    }
}

fn render_list(body: &Value) -> String {
    let policies = table::items(body);
    let mut out = String::new();
    if !policies.is_empty() {
        let mut table = Table::new(&[
            ("ID", Align::Left),
            ("NAME", Align::Left),
            ("VERSION", Align::Right),
            ("LIMIT USD", Align::Right),
            ("ALLOWED MODELS", Align::Left),
            ("CREATED", Align::Left),
        ]);
        for policy in policies {
            let models = policy
                .get("allowed_models")
                .and_then(Value::as_array)
                .map_or_else(
                    || "any".to_owned(),
                    |models| {
                        models
                            .iter()
                            .map(|m| text(Some(m)))
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
            table.row(vec![
                text(policy.get("id")),
                text(policy.get("name")),
                text(policy.get("version")),
                usd(policy.pointer("/budget/hard_limit_usd")),
                models,
                text(policy.get("created_at")),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&table::footer(body, "policies"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_as_json_or_yaml_by_extension() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let yaml = dir.path().join("p.yaml");
        std::fs::write(&yaml, "budget:\n  hard_limit_usd: 1.5\nmax_steps: 10\n")?;
        assert_eq!(
            read_document(&yaml)?,
            json!({"budget": {"hard_limit_usd": 1.5}, "max_steps": 10})
        );
        let json_file = dir.path().join("p.json");
        std::fs::write(&json_file, r#"{"allowed_models": ["gpt-4o"]}"#)?;
        assert_eq!(
            read_document(&json_file)?,
            json!({"allowed_models": ["gpt-4o"]})
        );
        std::fs::write(&json_file, "max_steps: 3")?;
        assert!(read_document(&json_file).is_err());
        Ok(())
    }
}
