//! Gateways as operators run them: the built `rungate` binary in a child process, on a port of
//! its own, so a test can run several side by side or kill one with SIGKILL.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{ADMIN_PASSWORD, TestResult};

pub struct Process {
    pub child: Child,
    pub url: String,
}

impl Process {
    /// SIGKILL: no graceful drain, no settlement of calls in flight.
    pub fn kill(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `rungate start` with `yaml` (written to `dir/<port>.yaml`, the port prepended) and
/// waits until it is healthy.
pub async fn start(
    http: &reqwest::Client,
    dir: &std::path::Path,
    port: u16,
    yaml: &str,
) -> TestResult<Process> {
    let config = dir.join(format!("rungate-{port}.yaml"));
    std::fs::write(&config, format!("port: {port}\n{yaml}"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_rungate"))
        .args(["start", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("RUNGATE_DASHBOARD_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(
            dir.join(format!("rungate-{port}.log")),
        )?)
        .spawn()?;
    let process = Process {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    if let Err(err) = wait_healthy(http, &process.url).await {
        let log =
            std::fs::read_to_string(dir.join(format!("rungate-{port}.log"))).unwrap_or_default();
        return Err(format!("{err}; its log:\n{log}").into());
    }
    Ok(process)
}

async fn wait_healthy(http: &reqwest::Client, url: &str) -> TestResult {
    for _ in 0..1000 {
        if let Ok(response) = http.get(format!("{url}/health")).send().await {
            if response.status() == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("gateway at {url} never became healthy").into())
}
