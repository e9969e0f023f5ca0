// The official `openai` JavaScript SDK, unmodified, through the gateway: answers, usage, cost
// headers, streams, tools, and the refusals an agent sees as typed SDK errors.

import assert from "node:assert/strict";

import { AuthenticationError, ConflictError, PermissionDeniedError } from "openai";

import {
  OPENAI_MODEL,
  newRunId,
  openaiClient,
  request,
  scriptedToolCall,
  scriptedUsage,
  useStack,
  user,
} from "./gateway.mjs";

const stack = useStack();
const test = stack.test;

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const SIX_DECIMALS = /^\d+\.\d{6}$/;
const BAD_TOKEN = "rg_agt_this-token-was-never-issued-0000000000";

async function client(label) {
  const agent = await stack.makeAgent(label);
  return { agent, oai: openaiClient(stack.gatewayUrl, agent.token) };
}

/** Every chunk of a stream, in order. */
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function streamedText(chunks) {
  return chunks
    .filter((chunk) => chunk.choices.length > 0)
    .map((chunk) => chunk.choices[0].delta.content ?? "")
    .join("");
}

test("chat completion returns the provider's answer and usage", async () => {
  const { oai } = await client("openai-plain");

  const completion = await oai.chat.completions.create({
    model: OPENAI_MODEL,
    messages: user("hello through rungate"),
  });

  const choice = completion.choices[0];
  assert.equal(choice.message.content, "Echo: hello through rungate");
  assert.equal(choice.message.role, "assistant");
  assert.equal(choice.finish_reason, "stop");
  assert.ok(completion.usage, "no usage in the completion");
  assert.ok(completion.usage.prompt_tokens > 0);
  assert.ok(completion.usage.completion_tokens > 0);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
});

test("withResponse() exposes the run, step and cost headers", async () => {
  const { oai } = await client("openai-headers");

  const { data: completion, response } = await oai.chat.completions
    .create({ model: OPENAI_MODEL, messages: user("what does it cost?") })
    .withResponse();
  const headers = response.headers;

  assert.equal(completion.choices[0].message.content, "Echo: what does it cost?");
  assert.ok(headers.get("x-rungate-run-id"), "no x-rungate-run-id header");
  assert.ok(headers.get("x-rungate-step-id"), "no x-rungate-step-id header");
  assert.equal(headers.get("x-rungate-provider"), "openai");
  assert.equal(headers.get("x-rungate-model"), OPENAI_MODEL);
  const cost = headers.get("x-rungate-cost-usd") ?? "";
  assert.match(cost, SIX_DECIMALS, `x-rungate-cost-usd ${JSON.stringify(cost)} is not 6 decimals`);
  assert.ok(Number(cost) > 0);
  assert.equal(Number(headers.get("x-rungate-tokens-used")), completion.usage.total_tokens);
});

test("cost header is tokens times the model price (unknown body fields reach the provider)", async () => {
  const { oai } = await client("openai-priced");

  // gpt-4o-mini: $0.15 / M input, $0.60 / M output → 1000 in + 500 out = $0.000150 + $0.000300.
  // The SDK sends unknown create() params as they are; the mock obeys `mock` only if it arrived.
  const { data: completion, response } = await oai.chat.completions
    .create({ model: OPENAI_MODEL, messages: user("priced"), ...scriptedUsage(1000, 500) })
    .withResponse();

  assert.equal(completion.usage.prompt_tokens, 1000);
  assert.equal(completion.usage.completion_tokens, 500);
  assert.equal(response.headers.get("x-rungate-cost-usd"), "0.000450");
  assert.equal(response.headers.get("x-rungate-tokens-used"), "1500");
});

test("stream text concatenates to the echo and hides the usage chunk nobody asked for", async () => {
  const { oai } = await client("openai-stream");

  const { data: stream, response } = await oai.chat.completions
    .create({ model: OPENAI_MODEL, messages: user("stream me please"), stream: true })
    .withResponse();
  const chunks = await collect(stream);

  assert.ok(response.headers.get("content-type")?.startsWith("text/event-stream"));
  assert.ok(response.headers.get("x-rungate-run-id"), "no x-rungate-run-id at stream open");
  assert.equal(response.headers.get("x-rungate-provider"), "openai");
  assert.ok(chunks.length > 0, "no chunk at all");
  assert.equal(streamedText(chunks), "Echo: stream me please");
  const usageOnly = chunks.filter((chunk) => chunk.choices.length === 0);
  assert.equal(usageOnly.length, 0, "a usage-only chunk reached a client that did not ask for it");
  assert.ok(
    chunks.every((chunk) => chunk.usage == null),
    "a chunk carries usage the client did not ask for",
  );
  assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
});

test("stream delivers exactly one usage chunk when the client asks for it", async () => {
  const { oai } = await client("openai-stream-usage");

  const stream = await oai.chat.completions.create({
    model: OPENAI_MODEL,
    messages: user("count me"),
    stream: true,
    stream_options: { include_usage: true },
    ...scriptedUsage(321, 7),
  });
  const chunks = await collect(stream);

  const usageOnly = chunks.filter((chunk) => chunk.choices.length === 0);
  assert.equal(usageOnly.length, 1, `expected one usage-only chunk, got ${usageOnly.length}`);
  assert.equal(chunks.at(-1), usageOnly[0], "the usage chunk must be the last one");
  assert.equal(usageOnly[0].usage.prompt_tokens, 321);
  assert.equal(usageOnly[0].usage.completion_tokens, 7);
  assert.equal(streamedText(chunks), "Echo: count me");
});

test("tool call comes back as the provider sent it", async () => {
  const { oai } = await client("openai-tool");

  const completion = await oai.chat.completions.create({
    model: OPENAI_MODEL,
    messages: user("weather in Paris?"),
    tools: [WEATHER_TOOL],
    ...scriptedToolCall("get_weather", { city: "Paris" }),
  });

  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.tool_calls?.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, "function");
  assert.ok(call.id, "the tool call has no id");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
});

test("streamed tool call reassembles its name and arguments", async () => {
  const { oai } = await client("openai-tool-stream");

  const stream = await oai.chat.completions.create({
    model: OPENAI_MODEL,
    messages: user("weather in Paris?"),
    tools: [WEATHER_TOOL],
    stream: true,
    ...scriptedToolCall("get_weather", { city: "Paris" }),
  });
  let name = "";
  let args = "";
  let finish = null;
  for await (const chunk of stream) {
    assert.ok(chunk.choices.length > 0, "usage-only chunk leaked into a stream that did not ask for usage");
    const choice = chunk.choices[0];
    for (const call of choice.delta.tool_calls ?? []) {
      name += call.function?.name ?? "";
      args += call.function?.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }

  assert.equal(name, "get_weather");
  assert.deepEqual(JSON.parse(args), { city: "Paris" });
  assert.equal(finish, "tool_calls");
});

test("models.list() shows what the policy allows", async () => {
  const { oai } = await client("openai-models");

  const ids = new Set();
  for await (const model of oai.models.list()) ids.add(model.id);

  assert.ok(ids.has("gpt-4o-mini") && ids.has("gpt-4o"), `listed: ${[...ids].join(", ")}`);
  assert.ok(!ids.has("gpt-3.5-turbo"), "a model outside the policy is listed");
});

test("a bad key raises AuthenticationError (401 invalid_api_key)", async () => {
  const oai = openaiClient(stack.gatewayUrl, BAD_TOKEN);

  for (const stream of [false, true]) {
    const error = await oai.chat.completions
      .create({ model: OPENAI_MODEL, messages: user("hi"), stream })
      .then(
        () => assert.fail(`stream=${stream}: a bad key was accepted`),
        (caught) => caught,
      );
    assert.ok(error instanceof AuthenticationError, `stream=${stream}: got ${error}`);
    assert.equal(error.status, 401);
    assert.equal(error.code, "invalid_api_key");
    assert.equal(error.type, "unauthorized");
    assert.equal(error.error?.message, "Invalid API key");
  }
});

test("a completed run refuses further calls with ConflictError (409 run_closed)", async () => {
  const { agent, oai } = await client("openai-run-closed");
  const runId = newRunId();
  const headers = { "x-rungate-run-id": runId };
  await oai.chat.completions.create({ model: OPENAI_MODEL, messages: user("before close") }, { headers });

  const done = await request("POST", `${stack.gatewayUrl}/v1/runs/${runId}/complete`, agent.token, {
    ended_reason: "sdk-tests-js",
  });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.body.data.id, runId);
  assert.equal(done.body.data.status, "completed");

  const error = await oai.chat.completions
    .create({ model: OPENAI_MODEL, messages: user("after close") }, { headers })
    .then(
      () => assert.fail("a completed run accepted another call"),
      (caught) => caught,
    );
  assert.ok(error instanceof ConflictError, `got ${error}`);
  assert.equal(error.status, 409);
  assert.equal(error.code, "run_closed");
  assert.equal(error.type, "conflict");
});

test("a model outside the policy raises PermissionDeniedError (403 model_not_allowed)", async () => {
  const { oai } = await client("openai-model-refused");

  const error = await oai.chat.completions.create({ model: "gpt-3.5-turbo", messages: user("old model") }).then(
    () => assert.fail("a model outside the policy was answered"),
    (caught) => caught,
  );

  assert.ok(error instanceof PermissionDeniedError, `got ${error}`);
  assert.equal(error.status, 403);
  assert.equal(error.code, "model_not_allowed");
  assert.equal(error.type, "governance_block");
  assert.match(error.message, /gpt-3\.5-turbo/);
  assert.equal(typeof error.error.context, "object", "website shape: no context");
  assert.equal(typeof error.error.details, "object", "SDK shape: no details");
  assert.equal(error.headers.get("x-rungate-governance"), "blocked");
});
