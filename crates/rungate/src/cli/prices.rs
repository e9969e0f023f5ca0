//! `rungate prices ...`: import LiteLLM's price map into the running gateway as a new price
//! table version, and show the table in use (or one model's price). The file goes up byte for
//! byte, so the version the gateway derives from its hash is the hash of the file on disk.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;

use super::Ctx;
use super::table::text;

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Import LiteLLM's model_prices_and_context_window.json as the price table in use.
    Import {
        /// The file (https://github.com/BerriAI/litellm, MIT-licensed).
        file: std::path::PathBuf,
    },
    /// Show the price table in use, or with --model the price a call to that model gets.
    Show {
        #[arg(long)]
        model: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, command: PricesCommand) -> anyhow::Result<String> {
    match command {
        PricesCommand::Import { file } => {
            let bytes = tokio::fs::read(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            let imported = ctx
                .client
                .post_json_bytes(&["prices", "import"], bytes)
                .await?;
            Ok(ctx.show(&imported, render_import))
        }
        PricesCommand::Show { model } => {
            let query: Vec<(&str, String)> = model.into_iter().map(|m| ("model", m)).collect();
            let table = ctx.client.get(&["prices"], &query).await?;
            Ok(ctx.show(&table, render_show))
        }
    }
}

fn render_import(body: &Value) -> String {
    let data = &body["data"];
    format!(
        "Imported price table {}: {} models ({} entries skipped), in use from now on.\n",
        text(data.get("version")),
        text(data.get("models")),
        text(data.get("skipped")),
    )
}

fn render_show(body: &Value) -> String {
    let data = &body["data"];
    let imported = match data.get("imported_at").and_then(Value::as_str) {
        Some(at) => format!(", imported {at}"),
        None => String::new(),
    };
    let table = format!(
        "Price table {} ({}{imported}): {} models.\n",
        text(data.get("version")),
        text(data.get("source")),
        text(data.get("models")),
    );
    let Some(model) = data.get("model") else {
        return table;
    };
    let line = match data.get("price").filter(|p| !p.is_null()) {
        Some(price) => {
            let usd = |field: &str| price.get(field).and_then(Value::as_f64);
            let dollars = |field: &str| usd(field).map_or("-".to_owned(), |d| format!("${d}"));
            let cached = match usd("cached_input_per_million") {
                Some(d) => format!(", cached input ${d}"),
                None => String::new(),
            };
            format!(
                "{}: input {}, output {}{cached} per million tokens (priced by {}).\n",
                text(Some(model)),
                dollars("input_per_million"),
                dollars("output_per_million"),
                text(price.get("version")),
            )
        }
        None => format!(
            "{}: no price (its calls are recorded at $0; give its provider key a pricing).\n",
            text(Some(model))
        ),
    };
    table + &line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_read_as_one_line_each() {
        let imported = json!({"data": {"version": "litellm-0123456789ab", "models": 1200, "skipped": 3, "imported_at": "2026-01-01T00:00:00Z"}});
        assert_eq!(
            render_import(&imported),
            "Imported price table litellm-0123456789ab: 1200 models (3 entries skipped), in use from now on.\n"
        );
        let built_in = json!({"data": {"version": "builtin-2026-12", "source": "built-in", "imported_at": null, "models": 30}});
        assert_eq!(
            render_show(&built_in),
            "Price table builtin-2026-12 (built-in): 30 models.\n"
        );
        let priced = json!({"data": {"version": "builtin-2026-12", "source": "built-in", "imported_at": null, "models": 30,
            "model": "gpt-4o", "price": {"input_per_million": 2.5, "output_per_million": 10.0, "cached_input_per_million": 1.25, "version": "config"}}});
        assert!(render_show(&priced).ends_with(
            "gpt-4o: input $2.5, output $10, cached input $1.25 per million tokens (priced by config).\n"
        ));
        let unpriced = json!({"data": {"version": "v", "source": "litellm", "imported_at": "t", "models": 1, "model": "llama", "price": null}});
        assert!(render_show(&unpriced).contains("llama: no price"));
    }
}
