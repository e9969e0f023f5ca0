// The official `openai` JavaScript SDK's Responses API (`client.responses`) through the gateway:
// the echo, usage and cost headers, and a typed-event stream that ends with Rungate's trailer.

import assert from "node:assert/strict";

import { OPENAI_MODEL, eventually, openaiClient, useStack } from "./gateway.mjs";

const stack = useStack();
const test = stack.test;

async function client(label) {
  const agent = await stack.makeAgent(label);
  return openaiClient(stack.gatewayUrl, agent.token);
}

test("responses.create returns the echo, usage and the run's cost", async () => {
  const oai = await client("responses-plain");

  const { data: response, response: raw } = await oai.responses
    .create({ model: OPENAI_MODEL, input: "hello responses" })
    .withResponse();

  assert.equal(response.output_text, "Echo: hello responses");
  assert.equal(response.status, "completed");
  assert.ok(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
  assert.equal(raw.headers.get("x-rungate-provider"), "openai");
  assert.equal(raw.headers.get("x-rungate-model"), OPENAI_MODEL);
  const cost = Number(raw.headers.get("x-rungate-cost-usd"));
  assert.ok(cost > 0, `x-rungate-cost-usd ${raw.headers.get("x-rungate-cost-usd")}`);
  const run = (await stack.admin.getRun(raw.headers.get("x-rungate-run-id"))).data;
  assert.equal(run.steps_count, 1);
  assert.ok(Math.abs(Number(run.total_cost_usd) - cost) < 2e-6);
});

test("a streamed response joins its deltas, completes with usage, and ends with the rungate trailer", async () => {
  const oai = await client("responses-stream");

  const { data: stream, response: raw } = await oai.responses
    .create({ model: OPENAI_MODEL, input: "stream responses", stream: true })
    .withResponse();
  const events = [];
  for await (const event of stream) events.push(event);

  const deltas = events.filter((event) => event.type === "response.output_text.delta");
  assert.equal(deltas.map((event) => event.delta).join(""), "Echo: stream responses");
  const completed = events.filter((event) => event.type === "response.completed");
  assert.equal(completed.length, 1);
  assert.ok(completed[0].response.usage.output_tokens > 0);
  // The SDK passes Rungate's untyped trailer through as the last event.
  const trailer = events.at(-1);
  assert.equal(trailer.type, undefined);
  assert.equal(trailer.run_id, raw.headers.get("x-rungate-run-id"));
  const run = await eventually(
    async () => (await stack.admin.getRun(trailer.run_id)).data,
    (found) => Number(found.total_cost_usd) > 0,
  );
  assert.equal(run.steps_count, 1);
});
