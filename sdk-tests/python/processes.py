"""The two processes the suite talks to: the mock provider and the Rungate gateway, both on loopback.

Each is started the way an operator would start it (the binary, a config file, an environment
variable) and stopped at the end of the session. Their output goes to files, so a failing test can
show what the gateway said while it ran.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
MOCK_BANNER = "mock-upstream listening on "
HEALTH_TIMEOUT_S = 30.0


def binary(env_var: str, name: str) -> Path:
    """The binary named by `env_var`, else the workspace's debug build."""
    configured = os.environ.get(env_var)
    path = (Path(configured) if configured else REPO_ROOT / "target" / "debug" / name).resolve()
    if not path.is_file():
        raise RuntimeError(
            f"{path} does not exist: run `cargo build -p rungate -p mock-upstream` "
            f"or set {env_var} (sdk-tests/run.sh does both)"
        )
    return path


def free_port() -> int:
    """A port nothing listens on right now (the gateway binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without RUNGATE_* (they would override the config file)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNGATE_")}
    env["NO_COLOR"] = "1"  # plain text in the logs a failing test prints
    env.update(extra)
    return env


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def tail(path: Path, offset: int = 0, limit: int = 12_000) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _first_line(proc: subprocess.Popen, timeout: float) -> str | None:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


class MockUpstream:
    """`mock-upstream --port 0 [args]`; its one stdout line tells the base URL (without /v1).

    `args` are the binary's own options (`--script '{"status":500}'`, `--require-key K`); `name`
    names the log file, so a second mock in one session keeps its own.
    """

    def __init__(self, executable: Path, workdir: Path, *args: str, name: str = "mock-upstream") -> None:
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(executable), "--port", "0", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(),
                text=True,
            )
        line = _first_line(self.proc, timeout=15)
        if not line or not line.startswith(MOCK_BANNER):
            self.close()
            raise RuntimeError(f"mock-upstream printed {line!r} instead of its banner\n{tail(self.log_path)}")
        self.base_url = line[len(MOCK_BANNER):].strip().rstrip("/")

    def close(self) -> None:
        stop(self.proc)


class Gateway:
    """`rungate start --config <tmp>/rungate.yaml` with SQLite in the temp dir and no demo provider."""

    def __init__(self, executable: Path, workdir: Path, password: str) -> None:
        self.log_path = workdir / "gateway.log"
        failures = []
        # The port is free when picked but could be taken before the gateway binds it: try again.
        for _attempt in range(3):
            port = free_port()
            self.base_url = f"http://{LOOPBACK}:{port}"
            config = workdir / "rungate.yaml"
            config.write_text(
                f"port: {port}\n"
                "storage:\n"
                "  type: sqlite\n"
                f"  path: {json.dumps(str(workdir / 'rungate.db'))}\n"
                'demo_provider: "off"\n'
            )
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [str(executable), "start", "--config", str(config)],
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env(RUNGATE_DASHBOARD_PASSWORD=password),
                )
            outcome = self._wait_healthy()
            if outcome is None:
                return
            failures.append(outcome)
            stop(self.proc)
            if "exited" not in outcome:
                break
        raise RuntimeError(
            "the gateway never became healthy:\n  " + "\n  ".join(failures) + f"\n--- gateway output ---\n{tail(self.log_path)}"
        )

    def _wait_healthy(self) -> str | None:
        """None once `GET /health` answers 200 {"status":"healthy"}, else why not."""
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return f"the gateway exited with status {code}"
            try:
                answer = httpx.get(f"{self.base_url}/health", timeout=1.0)
                if answer.status_code == 200 and answer.json().get("status") == "healthy":
                    return None
                last = f"{answer.status_code} {answer.text[:200]}"
            except (httpx.HTTPError, ValueError) as error:
                last = repr(error)
            time.sleep(0.05)
        return f"GET /health did not answer 200 healthy within {HEALTH_TIMEOUT_S:.0f} s (last: {last})"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        stop(self.proc)
