// Approval gates through the official JavaScript SDKs, unmodified: the 202 is visible through
// `withResponse()`, and after an approver decides the identical retry succeeds (openai) or the
// held answer comes back (@anthropic-ai/sdk, the model's proposal held for review).

import assert from "node:assert/strict";

import {
  ALLOWED_MODELS,
  ANTHROPIC_MODEL,
  OPENAI_MODEL,
  anthropicClient,
  newRunId,
  openaiClient,
  scriptedToolCall,
  useStack,
  user,
} from "./gateway.mjs";

const stack = useStack();
const test = stack.test;

async function gatedAgent(label, rules) {
  const policy = (await stack.admin.call("POST", "/api/policies", {
    name: `${label}-${newRunId()}`,
    allowed_models: ALLOWED_MODELS,
    ...rules,
  }, 201)).data;
  return stack.makeAgent(label, { policy_id: policy.id });
}

const approve = (id) => stack.admin.call("POST", `/api/approval-requests/${id}/approve`, {}, 200);

test("openai: a declared gated tool answers 202, and the retry succeeds once approved", async () => {
  const agent = await gatedAgent("js-gate-openai", { require_approval: ["execute_code"] });
  const oai = openaiClient(stack.gatewayUrl, agent.token);
  const runId = newRunId();
  const request = {
    model: OPENAI_MODEL,
    messages: user("run it"),
    tools: [{ type: "function", function: { name: "execute_code", parameters: { type: "object" } } }],
  };
  const headers = { headers: { "x-rungate-run-id": runId } };

  // The SDK treats a 2xx as success and hands back the body as it parsed it.
  const { data: waiting, response } = await oai.chat.completions.create(request, headers).withResponse();
  assert.equal(response.status, 202);
  assert.equal(response.headers.get("retry-after"), "5");
  assert.equal(response.headers.get("x-rungate-governance"), "awaiting_approval");
  assert.equal(waiting.status, "awaiting_approval");
  assert.equal(waiting.approval_requests[0].tool, "execute_code");

  await approve(waiting.approval_requests[0].id);
  const completion = await oai.chat.completions.create(request, headers);
  assert.equal(completion.choices[0].message.content, "Echo: run it");
});

test("anthropic: a proposed refund is held for review, then returned as the model's answer", async () => {
  const agent = await gatedAgent("js-gate-anthropic", {
    gates: [{ id: "refund:over-500", tool: "issue_refund", when: "args.amount_usd > 500" }],
  });
  const claude = anthropicClient(stack.gatewayUrl, agent.token);
  const request = {
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: user("refund order 42"),
    tools: [{ name: "issue_refund", input_schema: { type: "object" } }],
    ...scriptedToolCall("issue_refund", { amount_usd: 900 }),
  };
  const headers = { headers: { "x-rungate-run-id": newRunId() } };

  const { data: waiting, response } = await claude.messages.create(request, headers).withResponse();
  assert.equal(response.status, 202);
  assert.equal(waiting.context.proposed_action.args.amount_usd, 900);

  await approve(waiting.approval_requests[0].id);
  const message = await claude.messages.create(request, headers);
  const call = message.content.find((block) => block.type === "tool_use");
  assert.equal(call.name, "issue_refund");
  assert.deepEqual(call.input, { amount_usd: 900 });
});
