"""The OpenAI Agents SDK (`openai-agents`), unmodified, through the gateway: an `Agent` with a
`@function_tool` on the Responses API (the SDK's default), run to completion and streamed.

The mock asks for the agent's first tool when the last user input says "use tool"; once the SDK
sends the tool's output back, the conversation no longer ends with that input and the mock answers
with text, so each run is exactly two model calls: the tool call, then the final answer.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable

import agents
import pytest
import rungate
from agents import Agent, ModelSettings, Runner, function_tool

from clients import ALLOWED_MODELS, OPENAI_MODEL, async_openai_client
from conditions import eventually
from conftest import Agent as RungateAgent, Stack

PROMPT = "What is the weather today? use tool"


@pytest.fixture(scope="module", autouse=True)
def no_tracing() -> None:
    # Traces would go to OpenAI's servers; nothing may leave loopback.
    agents.set_tracing_disabled(True)


def weather_agent(invocations: list[str], run_id: str, model: str = OPENAI_MODEL) -> Agent:
    @function_tool
    def todays_weather() -> str:
        """Today's weather where the user is."""
        invocations.append("todays_weather")
        return "sunny, 21 degrees"

    return Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=model,
        tools=[todays_weather],
        # How an agent groups its calls into one Rungate run.
        model_settings=ModelSettings(extra_headers={"x-rungate-run-id": run_id}),
    )


def settled_run(admin: rungate.Admin, run_id: str, steps: int) -> dict[str, Any]:
    return eventually(
        lambda: admin.runs.get(run_id)["data"],
        lambda run: run["steps_count"] >= steps and float(run["total_cost_usd"]) > 0,
    )


def assert_two_governed_steps(admin: rungate.Admin, run_id: str) -> None:
    run = settled_run(admin, run_id, 2)
    assert run["steps_count"] == 2
    assert float(run["total_cost_usd"]) > 0
    steps = admin.runs.steps(run_id)["data"]
    assert len(steps) == 2
    assert all(step["type"] == "llm_call" and step["model"] == OPENAI_MODEL for step in steps)
    assert all(float(step["cost_usd"]) > 0 for step in steps)


def run_agent(gw: str, token: str, agent: Agent, prompt: str = PROMPT) -> Any:
    async def scenario() -> Any:
        async with async_openai_client(gw, token) as client:
            agents.set_default_openai_client(client, use_for_tracing=False)
            return await Runner.run(agent, prompt)

    return asyncio.run(scenario())


def test_runner_run_calls_the_tool_and_finishes_with_text(gw: str, agent, admin: rungate.Admin) -> None:
    run_id = f"agents-sdk-{uuid.uuid4()}"
    invocations: list[str] = []

    result = run_agent(gw, agent.token, weather_agent(invocations, run_id))

    assert invocations == ["todays_weather"]
    assert result.final_output == f"Echo: {PROMPT}"
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert outputs == ["sunny, 21 degrees"]
    assert len(result.raw_responses) == 2
    assert all(response.usage.output_tokens > 0 for response in result.raw_responses)
    assert_two_governed_steps(admin, run_id)


def test_runner_run_streamed_calls_the_tool_and_streams_the_answer(gw: str, agent, admin: rungate.Admin) -> None:
    run_id = f"agents-sdk-{uuid.uuid4()}"
    invocations: list[str] = []

    async def scenario() -> tuple[Any, str, list[str]]:
        async with async_openai_client(gw, agent.token) as client:
            agents.set_default_openai_client(client, use_for_tracing=False)
            result = Runner.run_streamed(weather_agent(invocations, run_id), PROMPT)
            text, items = "", []
            async for event in result.stream_events():
                if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
                    text += event.data.delta
                elif event.type == "run_item_stream_event":
                    items.append(event.item.type)
            return result, text, items

    result, text, items = asyncio.run(scenario())

    assert invocations == ["todays_weather"]
    assert text == f"Echo: {PROMPT}"
    assert result.final_output == f"Echo: {PROMPT}"
    assert items == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert_two_governed_steps(admin, run_id)


def test_an_agent_on_a_gemini_model_runs_its_tool_loop_through_translation(
    gw: str, stack: Stack, admin: rungate.Admin, make_agent: Callable[..., RungateAgent], provider_keys: dict
) -> None:
    # The Agents SDK reads "gemini/..." as its own provider prefix, so an agent names Gemini bare.
    gemini = admin.provider_keys.create(
        provider="gemini", name=f"agents-gemini-{uuid.uuid4().hex[:6]}", api_key="sk-mock", base_url=stack.mock_url
    )["data"]
    policy = admin.policies.create(
        name=f"agents-gemini-{uuid.uuid4().hex[:6]}", allowed_models=[*ALLOWED_MODELS, "gemini-2.5*"]
    )["data"]
    keys = {provider: data["id"] for provider, data in provider_keys.items()}
    owner = make_agent(policy_id=policy["id"], provider_keys={**keys, "gemini": gemini["id"]})
    run_id, invocations = f"agents-sdk-{uuid.uuid4()}", []

    result = run_agent(gw, owner.token, weather_agent(invocations, run_id, model="gemini-2.5-flash"))

    # The second call only answers with text if function_call_output reached Gemini as a functionResponse.
    assert invocations == ["todays_weather"]
    assert result.final_output == f"Echo: {PROMPT}"
    steps = eventually(lambda: admin.runs.steps(run_id)["data"], lambda found: len(found) >= 2)
    assert [(step["provider"], step["model"], step["status"]) for step in steps] == [
        ("gemini", "gemini-2.5-flash", "success")
    ] * 2


def test_an_agent_finishes_its_run_across_an_openai_outage(
    gw: str, admin: rungate.Admin, make_agent: Callable[..., RungateAgent], provider_keys: dict, spawn_mock
) -> None:
    down = spawn_mock("--script", '{"status": 503}', name="agents-openai-down")
    failing = admin.provider_keys.create(
        provider="openai", name=f"agents-down-{uuid.uuid4().hex[:6]}", api_key="sk-mock", base_url=down.base_url
    )["data"]
    policy = admin.policies.create(
        name=f"agents-failover-{uuid.uuid4().hex[:6]}",
        allowed_models=ALLOWED_MODELS,
        routing={"default_chain": ["anthropic"], "model_map": {OPENAI_MODEL: {"anthropic": "claude-sonnet-4-5"}}},
    )["data"]
    owner = make_agent(
        policy_id=policy["id"], provider_keys={"openai": failing["id"], "anthropic": provider_keys["anthropic"]["id"]}
    )
    run_id, invocations = f"agents-sdk-{uuid.uuid4()}", []

    result = run_agent(gw, owner.token, weather_agent(invocations, run_id))

    assert invocations == ["todays_weather"]
    # The Anthropic mock reads no text in a tool_result turn, so it gives its default reply.
    assert result.final_output == "Hello from mock"
    assert [item.type for item in result.new_items] == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    run = settled_run(admin, run_id, 4)
    assert run["steps_count"] == 4
    steps = admin.runs.steps(run_id)["data"]
    assert sorted((step["provider"], step["status"]) for step in steps) == [
        ("anthropic", "success"),
        ("anthropic", "success"),
        ("openai", "error"),
        ("openai", "error"),
    ]
