// The dashboard in a real headless Chromium (Debian's, driven by playwright-core), against a
// real gateway in front of the mock provider: an operator signs in, sees the run an agent just
// made through the proxy (live, without reloading), reads its trace, approves the agent's
// pending gate — and the agent's retry then succeeds — and is shown a bad CEL expression's
// position in place when editing a policy. A read-only admin token sees no buttons it could
// not use. Screenshots go to $RUNGATE_SCREENSHOTS (default target/screenshots, outside git).

import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { after, before } from "node:test";

import { chromium } from "playwright-core";

import { ALLOWED_MODELS, OPENAI_MODEL, newRunId, openaiClient, request, scriptedUsage, useStack, user } from "./gateway.mjs";

const stack = useStack();
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCREENSHOTS = resolve(process.env.RUNGATE_SCREENSHOTS || join(REPO_ROOT, "target", "screenshots"));
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const UI_TIMEOUT_MS = 10_000;

// Under CI the browser tests must run; elsewhere a machine without Chromium skips them, saying so.
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM_PATH)`;
if (missing && process.env.CI === "true") throw new Error(`the dashboard tests need Chromium: ${missing}`);
const test = (name, fn) => (missing ? stack.test(name, (t) => t.skip(missing)) : stack.test(name, fn));

const EXECUTE_CODE = { type: "function", function: { name: "execute_code", parameters: { type: "object" } } };

let browser;
let agent;
let policy;

/** A fresh browser context (its own cookie jar) on the dashboard. */
async function open(path = "/") {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  await page.goto(stack.gatewayUrl + path);
  return { context, page };
}

async function signIn(page, secret) {
  await page.getByLabel("Password or admin token").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

function agentCall(runId, content, extra = {}) {
  return openaiClient(stack.gatewayUrl, agent.token)
    .chat.completions.create(
      { model: OPENAI_MODEL, messages: user(content), ...extra },
      { headers: { "x-rungate-run-id": runId } },
    )
    .withResponse();
}

before(async () => {
  if (missing) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container, and a machine whose network is closed: no sandbox, no background calls.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  policy = (
    await stack.admin.createPolicy({
      name: `dashboard-${newRunId()}`,
      allowed_models: ALLOWED_MODELS,
      require_approval: ["execute_code"],
      budget: { hard_limit_usd: 1.0, alert_at: 0.8 },
    })
  ).data;
  agent = await stack.makeAgent("dashboard", { policy_id: policy.id });
});

test("sign-in: a wrong password is refused; the right one sets an HttpOnly session cookie", async () => {
  const { context, page } = await open("/");
  await signIn(page, "not-the-password");
  await page.getByRole("alert").filter({ hasText: "was not accepted" }).waitFor();
  assert.deepEqual(await context.cookies(), []);

  await signIn(page, stack.password);
  await page.getByRole("heading", { name: "Runs" }).waitFor();
  const [cookie, ...others] = await context.cookies();
  assert.equal(others.length, 0);
  assert.equal(cookie.name, "rungate_session");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.notEqual(cookie.value, stack.password);
  assert.equal(await page.evaluate(() => document.cookie), "", "the page's script can read the session");
  assert.ok(!page.url().includes(stack.password) && !page.url().includes(cookie.value));

  // Signing out ends the session on the gateway, not only in this browser.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Password or admin token").waitFor();
  const replayed = await request("GET", `${stack.gatewayUrl}/api/runs`, null, undefined, { cookie: `rungate_session=${cookie.value}` });
  assert.equal(replayed.status, 401);
  await context.close();
});

test("runs: a run made through the proxy appears live, and its trace shows the call's cost", async () => {
  const { context, page } = await open("/runs");
  await signIn(page, stack.password);
  await page.getByRole("heading", { name: "Runs" }).waitFor();

  // The page is already open: the run must appear without a reload.
  const runId = newRunId();
  // gpt-4o-mini: $0.15 / M input, $0.60 / M output → 200 000 in + 100 000 out = $0.09.
  const { response } = await agentCall(runId, "dashboard hello", scriptedUsage(200_000, 100_000));
  assert.equal(response.headers.get("x-rungate-cost-usd"), "0.090000");
  const row = page.locator(`tr[data-run-id="${runId}"]`);
  // The row may first show the run as it started ($0.00); the settled cost follows live.
  await page.waitForFunction(
    (id) => document.querySelector(`tr[data-run-id="${id}"]`)?.textContent.includes("$0.09"),
    runId,
  );
  assert.match(await row.innerText(), /running/);
  assert.match(await row.innerText(), /\$0\.09/);
  assert.match(await row.innerText(), new RegExp(agent.name));

  // The status filter is applied by the gateway: a running run is not among completed ones.
  await page.getByLabel("Status").selectOption("completed");
  await page.locator("table.runs, p:has-text('No runs match')").first().waitFor();
  await page.waitForFunction((id) => !document.querySelector(`tr[data-run-id="${id}"]`), runId);
  await page.getByLabel("Status").selectOption("");
  await row.waitFor();
  // So is the spend filter: the $0.09 run is not among runs that spent $0.50 or more.
  await page.getByLabel("Spend ≥ $").fill("0.5");
  await page.waitForFunction((id) => !document.querySelector(`tr[data-run-id="${id}"]`), runId);
  await page.getByLabel("Spend ≥ $").fill("0.05");
  await row.waitFor();
  await page.getByLabel("Spend ≥ $").fill("");
  await shot(page, "runs-list");

  await row.getByRole("link", { name: runId }).click();
  await page.getByRole("heading", { name: new RegExp(`Run ${runId}`) }).waitFor();
  const span = page.locator(`[data-span="llm.${OPENAI_MODEL}"]`);
  await span.waitFor();
  assert.match(await span.innerText(), /\$0\.09/);
  assert.match(await span.innerText(), /200,000 in \/ 100,000 out/);
  assert.equal(await page.locator('[data-span="run.init"]').count(), 1);
  await page.getByText("chain verified").waitFor();
  // The budget bar: $0.09 of the policy's $1.00 cap, with the alert at 80%.
  await page.getByText("$0.09 of $1.00 (9.0%)").waitFor();
  await page.getByText("alert at 80%").waitFor();
  await page.locator("table.ledger").getByText("settlement").waitFor();
  await shot(page, "run-trace");
  await context.close();
});

test("approvals: approving a pending gate in the dashboard lets the agent's retry through", async () => {
  const runId = newRunId();
  const gated = { tools: [EXECUTE_CODE] };
  const first = await agentCall(runId, "please run this code", gated);
  assert.equal(first.response.status, 202);
  const gateId = first.data.approval_requests[0].id;

  const { context, page } = await open("/approvals");
  await signIn(page, stack.password);
  const card = page.locator(`[data-gate-id="${gateId}"]`);
  await card.waitFor();
  const text = await card.innerText();
  assert.match(text, /execute_code/);
  assert.match(text, /require_approval/);
  assert.match(text, new RegExp(runId));
  // A one-hour gate reads "in 1h" right after it opens, "in 59m" a moment later.
  assert.match(text, /Expires\s+in (\d+m|1h)/);
  await page.getByRole("link", { name: /Approvals/ }).getByLabel("1 pending").waitFor();
  await shot(page, "approvals");

  // Still pending: the agent's retry is paused again.
  assert.equal((await agentCall(runId, "please run this code", gated)).response.status, 202);

  await card.getByPlaceholder("Reason").fill("reviewed the snippet");
  await card.getByRole("button", { name: "Approve" }).click();
  await page.getByText("Nothing is waiting for approval.").waitFor();

  const retry = await agentCall(runId, "please run this code", gated);
  assert.equal(retry.response.status, 200);
  assert.equal(retry.data.choices[0].message.content, "Echo: please run this code");

  const gate = (await stack.admin.call("GET", `/api/approval-requests/${gateId}`, undefined, 200)).data;
  assert.equal(gate.status, "approved");
  assert.equal(gate.decided_by, "admin:dashboard");
  assert.equal(gate.reason, "reviewed the snippet");
  await context.close();
});

test("policies: a bad CEL expression is refused with its position shown in place, and no version is made", async () => {
  const { context, page } = await open(`/policies/${policy.id}`);
  await signIn(page, stack.password);
  await page.getByRole("button", { name: "Edit" }).click();
  const editor = page.getByLabel(/Document \(JSON\)/);
  const document = JSON.parse(await editor.inputValue());
  document.gates = [{ id: "refund:big", tool: "issue_refund", when: "args.amount_usd >" }];
  await editor.fill(JSON.stringify(document, null, 2));
  await page.getByRole("button", { name: "Save new version" }).click();

  const problem = page.locator(".problem.located");
  await problem.waitFor();
  const shown = await problem.innerText();
  assert.match(shown, /gates\[0\]\.when/);
  assert.match(shown, /CEL syntax error at line 1, column 18/);
  // The expression is repeated with a caret under column 18.
  assert.ok(shown.includes(`args.amount_usd >\n${" ".repeat(17)}^`), shown);
  // ...and the editor's selection is on that expression, whose line is named.
  const text = await editor.inputValue();
  const line = text.slice(0, text.indexOf('"args.amount_usd >"')).split("\n").length;
  assert.match(shown, new RegExp(`document line ${line}\\b`));
  const selected = await editor.evaluate((area) => area.value.slice(area.selectionStart, area.selectionEnd));
  assert.equal(selected, '"args.amount_usd >"');
  assert.equal((await stack.admin.call("GET", `/api/policies/${policy.id}`, undefined, 200)).data.version, 1);
  await shot(page, "policy-error");

  // Fixed, it saves as v2, and the versions diff shows the new gate.
  document.gates[0].when = "args.amount_usd > 500";
  await editor.fill(JSON.stringify(document, null, 2));
  await page.getByRole("button", { name: "Save new version" }).click();
  await page.getByRole("heading", { name: /v2/ }).waitFor();
  const diff = await page.getByLabel("diff").innerText();
  assert.ok(diff.includes('+       "when": "args.amount_usd > 500"'), diff);
  assert.equal((await stack.admin.call("GET", `/api/policies/${policy.id}`, undefined, 200)).data.version, 2);
  await context.close();
});

test("scopes: a read-only admin token sees runs and gates but no buttons that would fail", async () => {
  const token = (await stack.admin.call("POST", "/api/admin-tokens", { name: "viewer", scopes: ["read"] }, 201)).data.token;
  const runId = newRunId();
  const pending = await agentCall(runId, "read-only sees this", { tools: [EXECUTE_CODE] });
  const gateId = pending.data.approval_requests[0].id;

  const { context, page } = await open("/approvals");
  await signIn(page, token);
  const card = page.locator(`[data-gate-id="${gateId}"]`);
  await card.waitFor();
  assert.equal(await card.getByRole("button").count(), 0);
  await page.getByText("read-only").waitFor();

  await page.goto(`${stack.gatewayUrl}/policies/${policy.id}`);
  await page.getByRole("heading", { name: policy.name }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Edit" }).count(), 0);
  await page.goto(`${stack.gatewayUrl}/runs/${encodeURIComponent(runId)}`);
  await page.getByRole("heading", { name: new RegExp(`Run ${runId}`) }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Stop run" }).count(), 0);

  // The gateway enforces the scope too: the session cannot approve behind the page's back.
  const refused = await page.evaluate(async (id) => {
    const answer = await fetch(`/api/approval-requests/${id}/approve`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-rungate-dashboard": "1" },
      body: "{}",
    });
    return { status: answer.status, body: await answer.json() };
  }, gateId);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /Insufficient scope/);
  await context.close();
});

after(async () => {
  await browser?.close();
});
