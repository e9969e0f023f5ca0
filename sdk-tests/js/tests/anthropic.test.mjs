// The official `@anthropic-ai/sdk` JavaScript SDK, unmodified, through the gateway (it
// authenticates with `x-api-key`): answers, usage, cost headers, the stream helper, tool use.

import assert from "node:assert/strict";

import { AuthenticationError, PermissionDeniedError } from "@anthropic-ai/sdk";

import { ANTHROPIC_MODEL, anthropicClient, scriptedToolCall, scriptedUsage, useStack, user } from "./gateway.mjs";

const stack = useStack();
const test = stack.test;

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const BAD_TOKEN = "rg_agt_this-token-was-never-issued-0000000000";

async function client(label) {
  const agent = await stack.makeAgent(label);
  return { agent, claude: anthropicClient(stack.gatewayUrl, agent.token) };
}

test("messages.create returns the provider's answer and usage", async () => {
  const { claude } = await client("anthropic-plain");

  const message = await claude.messages.create({
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: user("hello claude"),
  });

  assert.equal(message.type, "message");
  assert.equal(message.role, "assistant");
  assert.deepEqual(
    message.content.map((block) => block.type),
    ["text"],
  );
  assert.equal(message.content[0].text, "Echo: hello claude");
  assert.equal(message.stop_reason, "end_turn");
  assert.ok(message.usage.input_tokens > 0);
  assert.ok(message.usage.output_tokens > 0);
});

test("withResponse() exposes the run, step and cost headers", async () => {
  const { claude } = await client("anthropic-headers");

  // claude-sonnet-4: $3 / M input, $15 / M output → 1000 in + 500 out = $0.003000 + $0.007500.
  const { data: message, response } = await claude.messages
    .create({ model: ANTHROPIC_MODEL, max_tokens: 256, messages: user("priced"), ...scriptedUsage(1000, 500) })
    .withResponse();
  const headers = response.headers;

  assert.equal(message.content[0].text, "Echo: priced");
  assert.equal(message.usage.input_tokens, 1000);
  assert.equal(message.usage.output_tokens, 500);
  assert.ok(headers.get("x-rungate-run-id"), "no x-rungate-run-id header");
  assert.ok(headers.get("x-rungate-step-id"), "no x-rungate-step-id header");
  assert.equal(headers.get("x-rungate-provider"), "anthropic");
  assert.equal(headers.get("x-rungate-model"), ANTHROPIC_MODEL);
  assert.equal(headers.get("x-rungate-cost-usd"), "0.010500");
  assert.equal(headers.get("x-rungate-tokens-used"), "1500");
});

test("messages.stream() emits text events and a final message with usage", async () => {
  const { claude } = await client("anthropic-stream");

  const stream = claude.messages.stream({
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: user("stream me claude"),
  });
  const pieces = [];
  stream.on("text", (delta) => pieces.push(delta));
  const { response } = await stream.withResponse();
  const final = await stream.finalMessage();

  assert.ok(pieces.length > 0, "no text event");
  assert.equal(pieces.join(""), "Echo: stream me claude");
  assert.equal(final.content[0].type, "text");
  assert.equal(final.content[0].text, "Echo: stream me claude");
  assert.equal(final.stop_reason, "end_turn");
  assert.ok(final.usage.input_tokens > 0);
  assert.ok(final.usage.output_tokens > 0);
  assert.ok(response.headers.get("content-type")?.startsWith("text/event-stream"));
  assert.ok(response.headers.get("x-rungate-run-id"), "no x-rungate-run-id at stream open");
  assert.equal(response.headers.get("x-rungate-provider"), "anthropic");
  assert.equal(response.headers.get("x-rungate-model"), ANTHROPIC_MODEL);
});

test("messages.stream() reports the provider's exact usage", async () => {
  const { claude } = await client("anthropic-stream-usage");

  const final = await claude.messages
    .stream({ model: ANTHROPIC_MODEL, max_tokens: 256, messages: user("counted"), ...scriptedUsage(40, 3) })
    .finalMessage();

  assert.equal(final.content[0].text, "Echo: counted");
  assert.equal(final.usage.input_tokens, 40);
  assert.equal(final.usage.output_tokens, 3);
});

test("raw event stream follows the Anthropic grammar; only the rungate trailer follows message_stop", async () => {
  const { claude } = await client("anthropic-raw-stream");

  const { data: stream, response } = await claude.messages
    .create({
      model: ANTHROPIC_MODEL,
      max_tokens: 256,
      messages: user("raw events"),
      stream: true,
      ...scriptedUsage(40, 3),
    })
    .withResponse();
  const received = [];
  for await (const event of stream) received.push(event);
  const kinds = received.map((event) => event.type);

  assert.equal(kinds[0], "message_start");
  const stop = kinds.indexOf("message_stop");
  assert.ok(stop > 0, `no message_stop in ${kinds.join(", ")}`);
  assert.equal(kinds[stop - 1], "message_delta");
  // The `event: rungate` SSE event (SPEC §3.3) comes right after message_stop; this SDK hands it
  // over as a plain object without `type`, which an agent's `switch (event.type)` ignores (and
  // which messages.stream() ignores). Nothing else may follow.
  const trailer = received.slice(stop + 1);
  assert.equal(trailer.length, 1, `after message_stop the SDK saw ${JSON.stringify(trailer)}`);
  assert.equal(trailer[0].type, undefined);
  assert.equal(trailer[0].run_id, response.headers.get("x-rungate-run-id"));
  assert.equal(trailer[0].provider, "anthropic");
  assert.equal(trailer[0].model, ANTHROPIC_MODEL);
  assert.deepEqual(trailer[0].tokens, { input: 40, output: 3 });
  const events = received.slice(0, stop + 1);
  const text = events
    .filter((event) => event.type === "content_block_delta" && event.delta.type === "text_delta")
    .map((event) => event.delta.text)
    .join("");
  assert.equal(text, "Echo: raw events");
  assert.equal(events[0].message.usage.input_tokens, 40);
  assert.deepEqual(
    events.filter((event) => event.type === "message_delta").map((event) => event.usage.output_tokens),
    [3],
  );
});

test("a bad key raises AuthenticationError (401 invalid_api_key)", async () => {
  const claude = anthropicClient(stack.gatewayUrl, BAD_TOKEN);

  const error = await claude.messages.create({ model: ANTHROPIC_MODEL, max_tokens: 32, messages: user("hi") }).then(
    () => assert.fail("a bad key was accepted"),
    (caught) => caught,
  );

  assert.ok(error instanceof AuthenticationError, `got ${error}`);
  assert.equal(error.status, 401);
  // This SDK keeps the whole body in `error.error`: {"error": {...}} (or {"type":"error","error":{...}}).
  assert.equal(error.error?.error?.code, "invalid_api_key", JSON.stringify(error.error));
  assert.equal(error.error?.error?.message, "Invalid API key");
});

test("a bad key on messages.stream() is refused before any event", async () => {
  const claude = anthropicClient(stack.gatewayUrl, BAD_TOKEN);
  const stream = claude.messages.stream({ model: ANTHROPIC_MODEL, max_tokens: 32, messages: user("hi") });
  const events = [];
  stream.on("streamEvent", (event) => events.push(event));

  const error = await stream.finalMessage().then(
    () => assert.fail("a bad key was accepted"),
    (caught) => caught,
  );

  assert.ok(error instanceof AuthenticationError, `got ${error}`);
  assert.equal(error.status, 401);
  assert.equal(events.length, 0);
});

test("a model outside the policy raises PermissionDeniedError (403 model_not_allowed)", async () => {
  const { claude } = await client("anthropic-model-refused");

  const error = await claude.messages
    .create({ model: "claude-3-opus-20240229", max_tokens: 32, messages: user("not allowed") })
    .then(
      () => assert.fail("a model outside the policy was answered"),
      (caught) => caught,
    );

  assert.ok(error instanceof PermissionDeniedError, `got ${error}`);
  assert.equal(error.status, 403);
  assert.equal(error.error?.error?.code, "model_not_allowed", JSON.stringify(error.error));
  assert.equal(error.headers.get("x-rungate-governance"), "blocked");
});

test("tool_use block comes back as the provider sent it", async () => {
  const { claude } = await client("anthropic-tool");

  const message = await claude.messages.create({
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: user("weather in Paris?"),
    tools: [WEATHER_TOOL],
    ...scriptedToolCall("get_weather", { city: "Paris" }),
  });

  const toolUses = message.content.filter((block) => block.type === "tool_use");
  assert.equal(message.stop_reason, "tool_use");
  assert.equal(toolUses.length, 1);
  assert.equal(toolUses[0].name, "get_weather");
  assert.deepEqual(toolUses[0].input, { city: "Paris" });
  assert.ok(toolUses[0].id, "the tool_use block has no id");
});

test("streamed tool_use reassembles its input", async () => {
  const { claude } = await client("anthropic-tool-stream");

  const stream = claude.messages.stream({
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: user("weather in Paris?"),
    tools: [WEATHER_TOOL],
    ...scriptedToolCall("get_weather", { city: "Paris" }),
  });
  const final = await stream.finalMessage();

  const toolUses = final.content.filter((block) => block.type === "tool_use");
  assert.equal(final.stop_reason, "tool_use");
  assert.deepEqual(
    toolUses.map((block) => [block.name, block.input]),
    [["get_weather", { city: "Paris" }]],
  );
});
