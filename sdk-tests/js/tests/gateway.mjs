// The stack every test file talks to: the mock provider, a real gateway in a temp dir, and the
// operator's bootstrap: the JavaScript twin of sdk-tests/python/{processes,conftest,clients}.py.
//
// Each test file calls `useStack()` once at top level. node --test runs every file in its own
// process, so each file gets its own mock + gateway (started in a `before` hook, stopped in an
// `after` hook). Both children are also stopped when the file's process exits, is interrupted, or
// dies without running its hooks (a watchdog that holds a pipe to this process kills them by pid
// once that pipe closes), so they never outlive the run.

import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const LOOPBACK = "127.0.0.1";
const MOCK_BANNER = "mock-upstream listening on ";
const HEALTH_TIMEOUT_MS = 30_000;

export const TIMEOUT_MS = 20_000;
export const OPENAI_MODEL = "gpt-4o-mini";
export const ANTHROPIC_MODEL = "claude-sonnet-4-20250514";
// The sdk-tests policy every test agent starts on (same as the Python suite).
export const ALLOWED_MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4*", "claude-3-5-haiku*"];

// The clients must never reach loopback through a proxy configured in the environment.
process.env.NO_PROXY = process.env.no_proxy = "127.0.0.1,localhost";

// ---------------------------------------------------------------------------------------------
// Processes

function binary(envVar, name) {
  const configured = process.env[envVar];
  const path = resolve(configured || join(REPO_ROOT, "target", "debug", name));
  let ok = false;
  try {
    ok = statSync(path).isFile();
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(
      `${path} does not exist: run \`cargo build -p rungate -p mock-upstream\` or set ${envVar} ` +
        "(sdk-tests/js/run.sh does both)",
    );
  }
  return path;
}

/** This process's environment without RUNGATE_* (they would override the config file). */
function childEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("RUNGATE_")) env[key] = value;
  }
  env.NO_COLOR = "1"; // plain text in the logs a failing test prints
  return { ...env, ...extra };
}

/** A port nothing listens on right now (the gateway binds it a moment later). */
function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", fail);
    probe.listen(0, LOOPBACK, () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

export function tail(path, offset = 0, limit = 12_000) {
  let text;
  try {
    text = readFileSync(path).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
  return text.length <= limit ? text : "...\n" + text.slice(-limit);
}

function fileSize(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const running = new Set(); // ChildProcess objects not yet reaped

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child is gone. */
async function stop(child) {
  if (!child) return;
  if (!exited(child)) {
    const gone = new Promise((ok) => child.once("exit", ok));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(timer);
  }
  running.delete(child);
}

/** Synchronous last resort, for process exit and signals. */
function killAllNow() {
  for (const child of running) {
    if (!exited(child)) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

process.once("exit", killAllNow);
for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]]) {
  process.once(signal, () => {
    killAllNow();
    process.exit(128 + number);
  });
}

/**
 * A shell holding a pipe from this process: should this process die without running its hooks
 * or exit handler (SIGKILL, a crash of the runtime), the pipe closes, `read` returns and the
 * shell stops the child by pid. Once the child has exited normally the watchdog is SIGKILLed
 * first (so it cannot act) and only then is its pipe closed. The pipe is unref'd so it never
 * keeps this process alive.
 */
function guard(child) {
  const script =
    'read -r _ignored; kill -TERM "$1" 2>/dev/null; sleep 3; kill -KILL "$1" 2>/dev/null; exit 0';
  const watchdog = spawn("sh", ["-c", script, "rungate-sdk-tests-watchdog", String(child.pid)], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  watchdog.on("error", () => {});
  watchdog.stdin.on("error", () => {});
  watchdog.unref();
  watchdog.stdin.unref();
  child.once("exit", () => {
    watchdog.kill("SIGKILL");
    watchdog.stdin.destroy();
  });
}

function launch(executable, args, options) {
  const child = spawn(executable, args, options);
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (child.pid !== undefined) guard(child);
  return child;
}

function firstLine(child, timeoutMs) {
  return new Promise((ok) => {
    let buffered = "";
    const done = (line) => {
      clearTimeout(timer);
      child.stdout.off("data", onData);
      child.off("exit", onExit);
      ok(line);
    };
    const onData = (chunk) => {
      buffered += chunk.toString("utf8");
      const end = buffered.indexOf("\n");
      if (end >= 0) done(buffered.slice(0, end));
    };
    const onExit = () => done(buffered || null);
    const timer = setTimeout(() => done(null), timeoutMs);
    child.stdout.on("data", onData);
    child.once("exit", onExit);
  });
}

async function startMock(executable, workdir) {
  const logPath = join(workdir, "mock-upstream.log");
  const log = openSync(logPath, "w");
  const proc = launch(executable, ["--port", "0"], {
    stdio: ["ignore", "pipe", log],
    env: childEnv(),
  });
  closeSync(log);
  const line = await firstLine(proc, 15_000);
  // Keep draining stdout so the mock never blocks on a full pipe.
  proc.stdout.resume();
  proc.stdout.unref?.();
  if (!line || !line.startsWith(MOCK_BANNER)) {
    await stop(proc);
    throw new Error(`mock-upstream printed ${JSON.stringify(line)} instead of its banner\n${tail(logPath)}`);
  }
  return { proc, logPath, baseUrl: line.slice(MOCK_BANNER.length).trim().replace(/\/+$/, "") };
}

/** null once `GET /health` answers 200 {"status":"healthy"}, else why not. */
async function waitHealthy(proc, baseUrl) {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exited(proc)) return `the gateway exited with status ${proc.exitCode ?? proc.signalCode}`;
    try {
      const answer = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      const text = await answer.text();
      let status;
      try {
        status = JSON.parse(text).status;
      } catch {
        status = undefined;
      }
      if (answer.status === 200 && status === "healthy") return null;
      last = `${answer.status} ${text.slice(0, 200)}`;
    } catch (error) {
      last = String(error?.cause ?? error);
    }
    await sleep(50);
  }
  return `GET /health did not answer 200 healthy within ${HEALTH_TIMEOUT_MS / 1000} s (last: ${last})`;
}

/** `rungate start --config <tmp>/rungate.yaml` with SQLite in the temp dir and no demo provider. */
async function startGateway(executable, workdir, password) {
  const logPath = join(workdir, "gateway.log");
  const failures = [];
  // The port is free when picked but could be taken before the gateway binds it: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const baseUrl = `http://${LOOPBACK}:${port}`;
    const config = join(workdir, "rungate.yaml");
    writeFileSync(
      config,
      `port: ${port}\n` +
        "storage:\n" +
        "  type: sqlite\n" +
        `  path: ${JSON.stringify(join(workdir, "rungate.db"))}\n` +
        'demo_provider: "off"\n',
    );
    const log = openSync(logPath, "a");
    const proc = launch(executable, ["start", "--config", config], {
      cwd: workdir,
      stdio: ["ignore", log, log],
      env: childEnv({ RUNGATE_DASHBOARD_PASSWORD: password }),
    });
    closeSync(log);
    const outcome = await waitHealthy(proc, baseUrl);
    if (outcome === null) return { proc, logPath, baseUrl };
    failures.push(outcome);
    await stop(proc);
    if (!outcome.includes("exited")) break;
  }
  throw new Error(
    `the gateway never became healthy:\n  ${failures.join("\n  ")}\n--- gateway output ---\n${tail(logPath)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP (admin API and the agent's run endpoints)

export function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

/** `{status, headers, body}` with `body` parsed as JSON when it is JSON, else the text. */
export async function request(method, url, token, body, headers = {}) {
  const answer = await fetch(url, {
    method,
    headers: {
      ...(token ? bearer(token) : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await answer.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: answer.status, headers: answer.headers, body: parsed, text };
}

/** The admin API, authenticated with the dashboard password (every scope). */
class Admin {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  async call(method, path, body, expected) {
    const answer = await request(method, `${this.baseUrl}${path}`, this.token, body);
    if (expected !== undefined && answer.status !== expected) {
      throw new Error(`${method} ${path} answered ${answer.status} (expected ${expected}): ${answer.text}`);
    }
    return answer.body;
  }

  createProviderKey(fields) {
    return this.call("POST", "/api/provider-keys", fields, 201);
  }

  createPolicy(fields) {
    return this.call("POST", "/api/policies", fields, 201);
  }

  createAgent(fields) {
    return this.call("POST", "/api/agents", fields, 201);
  }

  getRun(id) {
    return this.call("GET", `/api/runs/${encodeURIComponent(id)}`, undefined, 200);
  }

  runSteps(id) {
    return this.call("GET", `/api/runs/${encodeURIComponent(id)}/steps`, undefined, 200);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients, built exactly as an agent would build them. SDK retries are off: a refusal must surface
// as the first answer, and retrying a 409 or a 5xx would only make a failing run slower.

export function openaiClient(gatewayUrl, token) {
  return new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: token, maxRetries: 0, timeout: TIMEOUT_MS });
}

export function anthropicClient(gatewayUrl, token) {
  return new Anthropic({ baseURL: gatewayUrl, apiKey: token, maxRetries: 0, timeout: TIMEOUT_MS });
}

export function user(text) {
  return [{ role: "user", content: text }];
}

/** Body extra that makes the mock report exactly this usage (and proves unknown fields pass). */
export function scriptedUsage(inputTokens, outputTokens) {
  return { mock: { usage: { input_tokens: inputTokens, output_tokens: outputTokens } } };
}

export function scriptedToolCall(name, args) {
  return { mock: { tool_call: { name, arguments: args } } };
}

export function newRunId() {
  return `sdk-js-run-${randomUUID()}`;
}

/** The first value of `read()` for which `holds` is true; the last one read after `timeoutMs`. */
export async function eventually(read, holds, timeoutMs = 3_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (holds(value) || Date.now() > deadline) return value;
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// The stack

/**
 * Registers the file's `before`/`after` hooks and returns the stack, filled in once `before` ran:
 * `gatewayUrl`, `mockUrl`, `password`, `admin`, `policy`, `providerKeys`, `makeAgent()`, `test()`.
 */
export function useStack() {
  const stack = {
    gatewayUrl: null,
    mockUrl: null,
    password: null,
    admin: null,
    policy: null,
    providerKeys: {},
    workdir: null,
    gateway: null,
    mock: null,
  };

  before(async () => {
    stack.workdir = mkdtempSync(join(tmpdir(), "rungate-sdk-js-"));
    stack.password = randomBytes(24).toString("base64url");
    stack.mock = await startMock(binary("MOCK_BIN", "mock-upstream"), stack.workdir);
    stack.mockUrl = stack.mock.baseUrl;
    stack.gateway = await startGateway(binary("RUNGATE_BIN", "rungate"), stack.workdir, stack.password);
    stack.gatewayUrl = stack.gateway.baseUrl;
    stack.admin = new Admin(stack.gatewayUrl, stack.password);

    // The operator's bootstrap: one provider key per provider (pointing at the mock), one policy.
    for (const provider of ["openai", "anthropic"]) {
      const created = await stack.admin.createProviderKey({
        provider,
        name: `mock-${provider}`,
        api_key: "sk-mock",
        base_url: stack.mockUrl,
      });
      stack.providerKeys[provider] = created.data;
    }
    stack.policy = (await stack.admin.createPolicy({ name: "sdk-tests", allowed_models: ALLOWED_MODELS })).data;
  });

  after(async () => {
    await stop(stack.gateway?.proc);
    await stop(stack.mock?.proc);
    if (stack.workdir && !process.env.RUNGATE_SDK_TESTS_KEEP) {
      rmSync(stack.workdir, { recursive: true, force: true });
    }
  });

  /** A fresh agent on the sdk-tests policy with both mock provider keys: no test shares runs. */
  stack.makeAgent = async (label = "agent", fields = {}) => {
    const providerKeys = Object.fromEntries(
      Object.entries(stack.providerKeys).map(([provider, data]) => [provider, data.id]),
    );
    const data = (
      await stack.admin.createAgent({
        name: `${label.slice(0, 40)}-${randomUUID().slice(0, 8)}`,
        policy_id: stack.policy.id,
        provider_keys: providerKeys,
        ...fields,
      })
    ).data;
    return { id: data.id, name: data.name, token: data.api_key, created: data };
  };

  /**
   * `node:test`'s `test`, with what the gateway logged during a failing test attached as a
   * diagnostic (the JS counterpart of the Python suite's "gateway log during this test" section).
   */
  stack.test = (name, fn) =>
    test(name, async (t) => {
      const offset = stack.gateway ? fileSize(stack.gateway.logPath) : 0;
      try {
        await fn(t);
      } catch (error) {
        const logged = stack.gateway ? tail(stack.gateway.logPath, offset) : "";
        if (logged.trim()) t.diagnostic(`gateway log during this test:\n${logged}`);
        throw error;
      }
    });

  return stack;
}
