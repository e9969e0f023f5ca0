//! The operator commands (`rungate agents|keys|runs|policies ...`) as an operator runs them: the
//! built binary against a real gateway on 127.0.0.1:0 over a real SQLite file, with the
//! built-in demo provider answering model calls. Each test boots its own gateway.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

struct Gateway {
    url: String,
    admin_token: String,
    /// Holds the database, the master key and `rungate.admin-token`.
    data: tempfile::TempDir,
    /// An empty directory the CLI runs in, so it never finds the token file by accident.
    cwd: tempfile::TempDir,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What one CLI invocation did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn start_gateway() -> anyhow::Result<Gateway> {
    let data = tempfile::tempdir()?;
    let db = data.path().join("rungate.db");
    // A JSON string is a valid YAML scalar, whatever the temp path contains.
    let yaml = format!(
        "storage:\n  type: sqlite\n  path: {}\nlog_level: warn\n",
        json!(db.display().to_string())
    );
    let config = rungate::config::Config::from_yaml(&yaml, &[])?;
    let gw = rungate::app::build(config).await?;
    let token_file = rungate::app::bootstrap_admin_token(&gw)
        .await?
        .context("a fresh database gets an admin token file")?;
    let admin_token = std::fs::read_to_string(token_file)?.trim().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rungate::app::serve(gw, listener, async move {
        let _ = rx.await;
    }));
    Ok(Gateway {
        url,
        admin_token,
        data,
        cwd: tempfile::tempdir()?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?,
        shutdown: Some(tx),
    })
}

impl Gateway {
    /// `rungate --url <gw> --token <admin> <args>`.
    async fn cli(&self, args: &[&str]) -> anyhow::Result<Run> {
        let mut full = vec![
            "--url",
            self.url.as_str(),
            "--token",
            self.admin_token.as_str(),
        ];
        full.extend_from_slice(args);
        run_cli(&full, self.cwd.path(), None).await
    }

    /// Same, with `stdin` piped in.
    async fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
        let mut full = vec![
            "--url",
            self.url.as_str(),
            "--token",
            self.admin_token.as_str(),
        ];
        full.extend_from_slice(args);
        run_cli(&full, self.cwd.path(), Some(stdin)).await
    }

    /// `rungate <args>` and expects success.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let run = self.cli(args).await?;
        anyhow::ensure!(run.ok, "rungate {args:?} failed: {}", run.stderr);
        Ok(run.stdout)
    }

    /// One chat completion through the proxy with an agent token; the status and the run id.
    async fn call(&self, agent_token: &str) -> anyhow::Result<(u16, Option<String>, Value)> {
        let response = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(agent_token)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await?;
        let status = response.status().as_u16();
        let run_id = response
            .headers()
            .get("x-rungate-run-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, run_id, body))
    }
}

async fn run_cli(args: &[&str], cwd: &std::path::Path, stdin: Option<&str>) -> anyhow::Result<Run> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rungate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUNGATE_URL")
        .env_remove("RUNGATE_ADMIN_TOKEN")
        .env_remove("RUNGATE_PROVIDER_API_KEY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await??;
    Ok(Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

/// The full `rg_agt_...` token on the `Token:` line of `agents create` / `rotate-key`.
fn agent_token(output: &str) -> anyhow::Result<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix("Token: "))
        .filter(|token| token.starts_with("rg_agt_") && token.len() > 32)
        .map(str::to_owned)
        .with_context(|| format!("the output shows an rg_agt_ token: {output}"))
}

/// A string field of a command's `--json` output.
fn json_field(output: &str, pointer: &str) -> anyhow::Result<String> {
    let body: Value = serde_json::from_str(output).context("--json prints JSON")?;
    body.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{pointer} in {output}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn created_agent_token_is_shown_once_and_stops_working_when_disabled() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let created = gw
        .ok(&["agents", "create", "support-bot", "--team", "ops"])
        .await?;
    assert!(created.contains("shown only once"), "{created}");
    let token = agent_token(&created)?;

    let list = gw.ok(&["agents", "list"]).await?;
    let header = list.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("NAME") && header.contains("STATUS"),
        "{list}"
    );
    let row = list
        .lines()
        .find(|l| l.contains("support-bot"))
        .context("agent row")?;
    assert!(row.contains("active") && row.contains("ops"), "{list}");
    assert!(!list.contains(&token), "the token is never listed");
    let id = row
        .split_whitespace()
        .next()
        .context("id column")?
        .to_owned();

    let (status, _, _) = gw.call(&token).await?;
    assert_eq!(status, 200, "an active agent's call goes through");

    let disabled = gw.ok(&["agents", "disable", &id]).await?;
    assert!(disabled.contains("disabled"), "{disabled}");
    let (status, _, body) = gw.call(&token).await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "agent_disabled");

    gw.ok(&["agents", "enable", &id]).await?;
    let rotated = gw.ok(&["agents", "rotate-key", &id]).await?;
    let new_token = agent_token(&rotated)?;
    assert_ne!(new_token, token);
    assert_eq!(gw.call(&token).await?.0, 401, "the old token stops working");
    assert_eq!(gw.call(&new_token).await?.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_key_read_from_stdin_is_listed_only_as_a_masked_suffix() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let secret = "sk-cli-test-secret-9876";
    let added = gw
        .cli_with_stdin(
            &[
                "keys",
                "add",
                "openai",
                "--name",
                "main",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ],
            &format!("{secret}\n"),
        )
        .await?;
    assert!(added.ok, "{}", added.stderr);
    assert!(added.stdout.contains("...9876"), "{}", added.stdout);
    assert!(!added.stdout.contains(secret));

    let list = gw.ok(&["keys", "list"]).await?;
    let row = list
        .lines()
        .find(|l| l.contains("main"))
        .context("key row")?;
    assert!(
        row.contains("openai") && row.contains("...9876") && row.contains("http://127.0.0.1:9"),
        "{list}"
    );
    let raw = gw.ok(&["--json", "keys", "list"]).await?;
    assert!(
        !list.contains(secret) && !raw.contains(secret),
        "the secret never comes back"
    );

    let health = gw.ok(&["keys", "health"]).await?;
    let row = health
        .lines()
        .find(|l| l.contains("main"))
        .context("health row")?;
    assert!(row.contains("openai") && row.contains("closed"), "{health}");

    let key_id = list
        .lines()
        .find(|l| l.contains("main"))
        .and_then(|l| l.split_whitespace().next())
        .context("id column")?;
    let pin = format!("openai={key_id}");
    let agent = gw
        .ok(&["agents", "create", "pinned", "--key", &pin, "--json"])
        .await?;
    assert_eq!(json_field(&agent, "/data/provider_keys/openai")?, key_id);
    assert!(json_field(&agent, "/data/api_key")?.starts_with("rg_agt_"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_listed_shown_with_their_steps_and_stopped() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let empty = gw.ok(&["runs", "list"]).await?;
    assert_eq!(empty, "no runs\n");
    let agent = gw.ok(&["--json", "agents", "create", "worker"]).await?;
    let (agent_id, token) = (
        json_field(&agent, "/data/id")?,
        json_field(&agent, "/data/api_key")?,
    );
    let (status, run_id, body) = gw.call(&token).await?;
    assert_eq!(status, 200, "{body}");
    let run_id = run_id.context("x-rungate-run-id")?;

    let list = gw
        .ok(&[
            "runs", "list", "--agent", &agent_id, "--status", "running", "--limit", "5",
        ])
        .await?;
    assert!(list.starts_with("RUN ID"), "{list}");
    let row = list
        .lines()
        .find(|l| l.starts_with(&run_id))
        .context("run row")?;
    assert!(row.contains("running") && row.contains(&agent_id), "{list}");
    let stopped_only = gw.ok(&["runs", "list", "--status", "stopped"]).await?;
    assert_eq!(stopped_only, "no runs\n");

    let shown = gw.ok(&["runs", "show", &run_id]).await?;
    assert!(
        shown.contains(&format!("id:            {run_id}\n")),
        "{shown}"
    );
    let steps_header = shown
        .lines()
        .find(|l| l.starts_with("STEP ID"))
        .context("steps table")?;
    for column in [
        "TYPE",
        "MODEL",
        "TOKENS IN",
        "TOKENS OUT",
        "COST USD",
        "LATENCY MS",
        "STATUS",
    ] {
        assert!(steps_header.contains(column), "{shown}");
    }
    let step = shown
        .lines()
        .find(|l| l.contains("llm_call"))
        .context("step row")?;
    assert!(
        step.contains("gpt-4o-mini") && step.contains("success"),
        "{shown}"
    );

    let stopped = gw.ok(&["runs", "stop", &run_id]).await?;
    assert!(stopped.contains("stopped"), "{stopped}");
    let raw = gw.ok(&["runs", "show", &run_id, "--json"]).await?;
    assert_eq!(json_field(&raw, "/run/status")?, "stopped");
    assert!(raw.contains("\"steps\""));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_are_created_from_yaml_and_attached_to_agents() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let file = gw.cwd.path().join("prod.yaml");
    std::fs::write(
        &file,
        "allowed_models: [gpt-4o-mini]\nbudget:\n  hard_limit_usd: 2.5\n",
    )?;
    let file = file.display().to_string();
    let created = gw
        .ok(&["--json", "policies", "create", "prod", "--file", &file])
        .await?;
    let policy_id = json_field(&created, "/data/id")?;
    let list = gw.ok(&["policies", "list"]).await?;
    let row = list
        .lines()
        .find(|l| l.contains("prod"))
        .context("policy row")?;
    assert!(
        row.contains("2.500000") && row.contains("gpt-4o-mini"),
        "{list}"
    );
    let agent = gw
        .ok(&["agents", "create", "governed", "--policy", &policy_id])
        .await?;
    assert!(agent.contains(&policy_id), "{agent}");

    std::fs::write(gw.cwd.path().join("bad.json"), r#"{"max_steps": "many"}"#)?;
    let bad = gw
        .cli(&["policies", "create", "bad", "--file", "bad.json"])
        .await?;
    assert!(!bad.ok);
    assert!(
        bad.stderr.starts_with("error: 400 invalid_request: "),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_print_status_code_and_message_and_exit_non_zero() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let missing = gw.cli(&["runs", "show", "no-such-run"]).await?;
    assert!(!missing.ok);
    assert!(missing.stdout.is_empty());
    assert!(
        missing.stderr.starts_with("error: 404 not_found: "),
        "{}",
        missing.stderr
    );

    let bad_token = run_cli(
        &[
            "--url",
            &gw.url,
            "--token",
            "rg_adm_wrong",
            "agents",
            "list",
        ],
        gw.cwd.path(),
        None,
    )
    .await?;
    assert!(!bad_token.ok);
    assert!(
        bad_token.stderr.starts_with("error: 401 "),
        "{}",
        bad_token.stderr
    );

    let unreachable = run_cli(
        &[
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "x",
            "runs",
            "list",
        ],
        gw.cwd.path(),
        None,
    )
    .await?;
    assert!(!unreachable.ok);
    assert!(
        unreachable.stderr.contains("cannot reach the gateway"),
        "{}",
        unreachable.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_token_is_read_from_the_file_rungate_start_wrote() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let beside_db = run_cli(&["--url", &gw.url, "agents", "list"], gw.data.path(), None).await?;
    assert!(beside_db.ok, "{}", beside_db.stderr);
    assert_eq!(beside_db.stdout, "no agents\n");

    let elsewhere = run_cli(&["--url", &gw.url, "agents", "list"], gw.cwd.path(), None).await?;
    assert!(!elsewhere.ok);
    assert!(
        elsewhere.stderr.contains("RUNGATE_ADMIN_TOKEN")
            && elsewhere.stderr.contains("rungate.admin-token"),
        "{}",
        elsewhere.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approver_lists_and_approves_a_paused_run_from_the_cli() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    std::fs::write(
        gw.cwd.path().join("gated.yaml"),
        "require_approval: [execute_code]\n",
    )?;
    let created = gw
        .ok(&[
            "--json",
            "policies",
            "create",
            "gated",
            "--file",
            "gated.yaml",
        ])
        .await?;
    let policy_id = json_field(&created, "/data/id")?;
    let agent = gw
        .ok(&["agents", "create", "coder", "--policy", &policy_id])
        .await?;
    let token = agent_token(&agent)?;
    let request = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "run it"}],
                         "tools": [{"type": "function", "function": {"name": "execute_code"}}]});
    let send = || {
        gw.http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&token)
            .header("x-rungate-run-id", "cli-gate")
            .json(&request)
            .send()
    };
    let asked = send().await?;
    assert_eq!(asked.status(), 202);
    let body: Value = asked.json().await?;
    let id = body
        .pointer("/approval_requests/0/id")
        .and_then(Value::as_str)
        .context("gate id")?
        .to_owned();

    let list = gw.ok(&["approvals", "list"]).await?;
    let row = list.lines().find(|l| l.contains(&id)).context("gate row")?;
    assert!(
        row.contains("execute_code") && row.contains("pending") && row.contains("cli-gate"),
        "{list}"
    );
    let wrong = gw
        .cli(&["approvals", "approve", &id, "--hard-limit-usd", "5"])
        .await?;
    assert!(
        !wrong.ok && wrong.stderr.contains("budget"),
        "a cap only applies to budget requests: {}",
        wrong.stderr
    );
    let approved = gw
        .ok(&["approvals", "approve", &id, "--reason", "reviewed"])
        .await?;
    assert!(approved.contains("approved"), "{approved}");
    assert_eq!(
        send().await?.status(),
        200,
        "the identical retry goes through"
    );
    let pending = gw.ok(&["approvals", "list"]).await?;
    assert!(!pending.contains(&id), "no longer pending: {pending}");
    let rejected = gw.cli(&["approvals", "reject", &id]).await?;
    assert!(
        !rejected.ok && rejected.stderr.contains("409"),
        "{}",
        rejected.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_and_export_a_run_and_fail_loudly_when_it_was_edited() -> anyhow::Result<()> {
    let gw = start_gateway().await?;
    let token = agent_token(&gw.ok(&["agents", "create", "audited"]).await?)?;
    let (_, run_id, _) = gw.call(&token).await?;
    gw.call(&token).await?;
    let run_id = run_id.context("run id")?;
    let verified = gw.ok(&["audit", "verify", &run_id]).await?;
    assert!(verified.contains("holds"), "{verified}");
    let exported = gw
        .ok(&["audit", "export", &run_id, "--format", "jsonl"])
        .await?;
    let events: Vec<Value> = exported
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(events.len() >= 3, "{exported}");
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "oldest first, every event"
    );
    assert_eq!(events[0]["kind"], "run.started");

    let db = rusqlite::Connection::open(gw.data.path().join("rungate.db"))?;
    db.busy_timeout(Duration::from_secs(5))?;
    db.execute(
        "UPDATE audit_events SET actor = 'admin:someone-else' WHERE run_id = ?1 AND seq = 2",
        [&run_id],
    )?;
    let failed = gw.cli(&["audit", "verify", &run_id]).await?;
    assert!(!failed.ok, "an edited chain exits non-zero");
    assert!(failed.stderr.contains("event 2"), "{}", failed.stderr);
    Ok(())
}
