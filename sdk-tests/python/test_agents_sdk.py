"""The OpenAI Agents SDK (`openai-agents`), unmodified, through the gateway: an `Agent` with a
`@function_tool` on the Responses API (the SDK's default), run to completion and streamed.

The mock asks for the agent's first tool when the last user input says "use tool"; once the SDK
sends the tool's output back, the conversation no longer ends with that input and the mock answers
with text, so each run is exactly two model calls: the tool call, then the final answer.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import agents
import pytest
import rungate
from agents import Agent, ModelSettings, Runner, function_tool

from clients import OPENAI_MODEL, async_openai_client
from conditions import eventually

PROMPT = "What is the weather today? use tool"


@pytest.fixture(scope="module", autouse=True)
def no_tracing() -> None:
    # Traces would go to OpenAI's servers; nothing may leave loopback.
    agents.set_tracing_disabled(True)


def weather_agent(invocations: list[str], run_id: str) -> Agent:
    @function_tool
    def todays_weather() -> str:
        """Today's weather where the user is."""
        invocations.append("todays_weather")
        return "sunny, 21 degrees"

    return Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=OPENAI_MODEL,
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


def test_runner_run_calls_the_tool_and_finishes_with_text(gw: str, agent, admin: rungate.Admin) -> None:
    run_id = f"agents-sdk-{uuid.uuid4()}"
    invocations: list[str] = []

    async def scenario() -> Any:
        async with async_openai_client(gw, agent.token) as client:
            agents.set_default_openai_client(client, use_for_tracing=False)
            return await Runner.run(weather_agent(invocations, run_id), PROMPT)

    result = asyncio.run(scenario())

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
