use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err_text(yaml: &str) -> String {
    match Config::from_yaml(yaml, &[]) {
        Ok(_) => String::from("<accepted>"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn empty_file_is_the_embedded_default() -> Result<(), ConfigError> {
    let config = Config::from_yaml("", &[])?;
    assert_eq!(config.listen_addr().to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.storage,
        StorageConfig::Sqlite {
            path: "rungate.db".into()
        }
    );
    assert_eq!(config.max_body_bytes, 10 * 1024 * 1024);
    Ok(())
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    assert!(
        err_text("prot: 9000\n").contains("prot"),
        "{}",
        err_text("prot: 9000\n")
    );
    let nested = err_text("storage:\n  type: sqlite\n  pth: x.db\n");
    assert!(
        nested.contains("storage") && nested.contains("pth"),
        "{nested}"
    );
    let pricing = err_text(
        "pricing:\n  gpt-4o:\n    input_per_million: 1\n    output_per_million: 2\n    extra: 3\n",
    );
    assert!(
        pricing.contains("pricing.gpt-4o") && pricing.contains("extra"),
        "{pricing}"
    );
}

#[test]
fn bad_values_name_the_key() {
    assert!(err_text("port: 99999\n").contains("port"));
    assert!(err_text("log_level: loud\n").contains("log_level"));
    assert!(err_text("storage:\n  type: mongo\n").contains("storage.type"));
    assert!(err_text("storage:\n  type: postgres\n").contains("storage.url"));
    assert!(err_text("encryption_key: short\n").contains("encryption_key"));
    assert!(
        err_text("pricing:\n  m:\n    input_per_million: -1\n    output_per_million: 2\n")
            .contains("pricing.m")
    );
}

#[test]
fn environment_overrides_file_values() -> Result<(), ConfigError> {
    let config = Config::from_yaml(
        "port: 9000\nstorage:\n  type: sqlite\n  path: a.db\n",
        &env(&[("RUNGATE_PORT", "9100"), ("RUNGATE_STORAGE_PATH", "b.db")]),
    )?;
    assert_eq!(config.port, 9100);
    assert_eq!(
        config.storage,
        StorageConfig::Sqlite {
            path: "b.db".into()
        }
    );
    let bad = Config::from_yaml("", &env(&[("RUNGATE_PORT", "x")]));
    assert!(matches!(bad, Err(ConfigError::Invalid { key, .. }) if key == "RUNGATE_PORT"));
    Ok(())
}

#[test]
fn secrets_never_print() -> Result<(), ConfigError> {
    let config = Config::from_yaml(
        "storage:\n  type: postgres\n  url: postgres://u:hunter2@h/db\n",
        &env(&[("RUNGATE_DASHBOARD_PASSWORD", "pa55word")]),
    )?;
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("pa55word"),
        "{debug}"
    );
    Ok(())
}

#[test]
fn every_example_config_in_the_repo_parses() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml")
            && !path.to_string_lossy().contains("policy")
        {
            let text = std::fs::read_to_string(&path)?;
            Config::from_yaml(&text, &[]).map_err(|e| format!("{}: {e}", path.display()))?;
            seen += 1;
        }
    }
    assert!(seen > 0, "no example configs found in {}", dir.display());
    Ok(())
}

#[test]
fn approver_channels_are_checked_and_their_urls_kept_secret()
-> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_yaml(
        "approver_channels:\n  \"slack://#ops\": https://hooks.example/T1/secret-token\n",
        &[],
    )?;
    assert!(config.approver_channels.contains_key("slack://#ops"));
    assert!(!format!("{config:?}").contains("secret-token"));
    let bad_name = Config::from_yaml("approver_channels:\n  ops: https://h\n", &[]);
    assert!(bad_name.is_err_and(|e| e.to_string().contains("approver_channels.ops")));
    let bad_url = Config::from_yaml("approver_channels:\n  \"slack://#ops\": ftp://h\n", &[]);
    assert!(bad_url.is_err());
    Ok(())
}

#[test]
fn aliases_and_the_circuit_breaker_are_configurable_and_checked() -> Result<(), ConfigError> {
    let config = Config::from_yaml(
        "model_aliases:\n  fast: anthropic/claude-haiku-4-5\ncircuit_breaker:\n  failure_threshold: 3\n  cooldown_ms: 1500\n",
        &[],
    )?;
    assert_eq!(
        config.model_aliases.get("fast").map(String::as_str),
        Some("anthropic/claude-haiku-4-5")
    );
    assert_eq!(config.circuit_breaker.failure_threshold, 3);
    assert_eq!(config.circuit_breaker.cooldown, Duration::from_millis(1500));
    let defaults = Config::from_yaml("", &[])?;
    assert_eq!(defaults.circuit_breaker.failure_threshold, 5);
    let chained = err_text("model_aliases:\n  a: b\n  b: gpt-4o\n");
    assert!(chained.contains("model_aliases.a"), "{chained}");
    let zero = err_text("circuit_breaker:\n  failure_threshold: 0\n");
    assert!(zero.contains("circuit_breaker.failure_threshold"), "{zero}");
    let typo = err_text("circuit_breaker:\n  cooldown: 5\n");
    assert!(typo.contains("cooldown"), "{typo}");
    Ok(())
}
