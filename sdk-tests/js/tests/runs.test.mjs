// Run grouping as an agent built on the JavaScript SDKs sees it: calls naming one run id share that
// run, and the operator sees one run with every step in the admin API.

import assert from "node:assert/strict";

import {
  ANTHROPIC_MODEL,
  OPENAI_MODEL,
  anthropicClient,
  eventually,
  newRunId,
  openaiClient,
  request,
  scriptedUsage,
  useStack,
  user,
} from "./gateway.mjs";

const stack = useStack();
const test = stack.test;

function call(oai, text, headers) {
  return oai.chat.completions.create({ model: OPENAI_MODEL, messages: user(text) }, { headers }).withResponse();
}

test("two calls naming one x-rungate-run-id share that run", async () => {
  const agent = await stack.makeAgent("runs-shared");
  const oai = openaiClient(stack.gatewayUrl, agent.token);
  const runId = newRunId();

  const first = await call(oai, "one", { "x-rungate-run-id": runId });
  const second = await call(oai, "two", { "x-rungate-run-id": runId });

  assert.equal(first.response.headers.get("x-rungate-run-id"), runId);
  assert.equal(second.response.headers.get("x-rungate-run-id"), runId);
  const stepIds = [first, second].map(({ response }) => response.headers.get("x-rungate-step-id"));
  assert.ok(stepIds.every(Boolean), "a call has no x-rungate-step-id");
  assert.notEqual(stepIds[0], stepIds[1]);

  const run = (await stack.admin.getRun(runId)).data;
  assert.equal(run.id, runId);
  assert.equal(run.status, "running");
  assert.equal(run.steps_count, 2);
  const expected = [first, second].reduce((sum, { response }) => sum + Number(response.headers.get("x-rungate-cost-usd")), 0);
  assert.ok(Number(run.total_cost_usd) > 0);
  assert.ok(
    Math.abs(Number(run.total_cost_usd) - expected) <= 2e-6,
    `run total ${run.total_cost_usd} != sum of the cost headers ${expected}`,
  );

  const steps = (await stack.admin.runSteps(runId)).data;
  assert.deepEqual(new Set(steps.map((step) => step.id)), new Set(stepIds));
  assert.ok(steps.every((step) => step.type === "llm_call" && step.model === OPENAI_MODEL), JSON.stringify(steps));
});

test("an OpenAI call and a streamed Anthropic call naming one run id share that run", async () => {
  const agent = await stack.makeAgent("runs-mixed");
  const oai = openaiClient(stack.gatewayUrl, agent.token);
  const claude = anthropicClient(stack.gatewayUrl, agent.token);
  const runId = newRunId();
  const headers = { "x-rungate-run-id": runId };

  // gpt-4o-mini 1000 in + 500 out = $0.000450; claude-sonnet-4 1000 in + 500 out = $0.010500.
  await oai.chat.completions.create(
    { model: OPENAI_MODEL, messages: user("plain"), ...scriptedUsage(1000, 500) },
    { headers },
  );
  const final = await claude.messages
    .stream(
      { model: ANTHROPIC_MODEL, max_tokens: 256, messages: user("streamed"), ...scriptedUsage(1000, 500) },
      { headers },
    )
    .finalMessage();
  assert.equal(final.content[0].text, "Echo: streamed");

  // A streamed call is settled as its stream ends: the admin read may race that write briefly.
  const run = await eventually(
    async () => (await stack.admin.getRun(runId)).data,
    (r) => r.steps_count === 2 && Math.abs(Number(r.total_cost_usd) - 0.01095) < 1e-9,
  );
  assert.equal(run.steps_count, 2);
  assert.ok(Math.abs(Number(run.total_cost_usd) - 0.01095) < 1e-9, `run total ${run.total_cost_usd}`);
});

test("calls without a run id land in the agent's auto-run", async () => {
  const agent = await stack.makeAgent("runs-auto");
  const oai = openaiClient(stack.gatewayUrl, agent.token);

  const first = await call(oai, "auto one");
  const second = await call(oai, "auto two");

  const runId = first.response.headers.get("x-rungate-run-id");
  assert.ok(runId, "no x-rungate-run-id header");
  assert.equal(second.response.headers.get("x-rungate-run-id"), runId);
  assert.equal((await stack.admin.getRun(runId)).data.steps_count, 2);
});

test("x-rungate-new-run starts a new run that later calls join", async () => {
  const agent = await stack.makeAgent("runs-new");
  const oai = openaiClient(stack.gatewayUrl, agent.token);

  const before = (await call(oai, "old run")).response.headers.get("x-rungate-run-id");
  const fresh = (await call(oai, "new run", { "x-rungate-new-run": "true" })).response.headers.get("x-rungate-run-id");
  const after = (await call(oai, "continue")).response.headers.get("x-rungate-run-id");

  assert.ok(fresh && fresh !== before, `new run ${fresh}, previous ${before}`);
  assert.equal(after, fresh);
});

test("the agent reads its own run; completing it twice answers the same run", async () => {
  const agent = await stack.makeAgent("runs-complete");
  const oai = openaiClient(stack.gatewayUrl, agent.token);
  const runId = newRunId();
  await call(oai, "mine", { "x-rungate-run-id": runId });

  const own = await request("GET", `${stack.gatewayUrl}/v1/runs/${runId}`, agent.token);
  assert.equal(own.status, 200, own.text);
  assert.equal(own.body.data.id, runId);
  assert.equal(own.body.data.status, "running");
  assert.equal(own.body.data.steps_count, 1);

  const url = `${stack.gatewayUrl}/v1/runs/${runId}/complete`;
  const first = await request("POST", url, agent.token, {});
  const second = await request("POST", url, agent.token, {});
  assert.equal(first.status, 200, first.text);
  assert.equal(second.status, 200, second.text);
  assert.equal(second.body.data.id, runId);
  assert.equal(second.body.data.status, "completed");
  assert.equal((await stack.admin.getRun(runId)).data.status, "completed");
});
