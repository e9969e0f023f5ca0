"""The official openai SDK's Responses API (`client.responses`) through the gateway: answers, usage,
cost headers, typed-event streams ending in Rungate's trailer, function calls, and refusals."""

from __future__ import annotations

import json
import re
import uuid

import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, OPENAI_MODEL, openai_client
from conditions import eventually
from refusals import governance_block

SIX_DECIMALS = re.compile(r"\d+\.\d{6}")
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def run_of(admin: rungate.Admin, run_id: str, steps: int = 1) -> dict:
    """The run once its spend is settled (a stream settles as it ends, racing this read)."""
    return eventually(
        lambda: admin.runs.get(run_id)["data"],
        lambda run: run["steps_count"] >= steps and float(run["total_cost_usd"]) > 0,
    )


def test_responses_create_returns_the_echo_usage_and_rungate_headers(
    oai: openai.OpenAI, admin: rungate.Admin
) -> None:
    raw = oai.responses.with_raw_response.create(model=OPENAI_MODEL, input="hello responses")
    response = raw.parse()
    headers = raw.headers

    assert response.output_text == "Echo: hello responses"
    assert response.status == "completed"
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    run_id = headers.get("x-rungate-run-id")
    assert run_id
    assert headers.get("x-rungate-step-id")
    assert headers.get("x-rungate-provider") == "openai"
    assert headers.get("x-rungate-model") == OPENAI_MODEL
    cost = headers.get("x-rungate-cost-usd", "")
    assert SIX_DECIMALS.fullmatch(cost), f"x-rungate-cost-usd {cost!r} is not 6 decimals"
    assert float(cost) > 0
    assert int(headers.get("x-rungate-tokens-used", "-1")) == response.usage.total_tokens

    run = run_of(admin, run_id)
    assert run["steps_count"] == 1
    assert float(run["total_cost_usd"]) == pytest.approx(float(cost), abs=2e-6)
    step = admin.runs.steps(run_id)["data"][0]
    assert step["type"] == "llm_call"
    assert step["model"] == OPENAI_MODEL


def test_responses_accept_message_items_and_instructions(oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model=OPENAI_MODEL,
        instructions="be brief",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "items in, echo out"}]}],
    )

    assert response.output_text == "Echo: items in, echo out"
    assert response.instructions == "be brief"


def test_responses_stream_deltas_join_to_the_echo_and_complete_with_usage(
    oai: openai.OpenAI, admin: rungate.Admin
) -> None:
    raw = oai.responses.with_raw_response.create(model=OPENAI_MODEL, input="stream responses", stream=True)
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    run_id = raw.headers.get("x-rungate-run-id")
    assert run_id
    assert raw.headers.get("x-rungate-provider") == "openai"

    # The trailing `event: rungate` must not break the SDK's iteration.
    events = list(raw.parse())
    typed = [event for event in events if getattr(event, "type", None)]

    text = "".join(event.delta for event in typed if event.type == "response.output_text.delta")
    assert text == "Echo: stream responses"
    assert typed[0].type == "response.created"
    completed = [event for event in typed if event.type == "response.completed"]
    assert len(completed) == 1
    usage = completed[0].response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert completed[0].response.output_text == "Echo: stream responses"

    # The SDK has no type for Rungate's trailer: it arrives last, untyped, with the run's figures.
    trailer = events[-1]
    assert getattr(trailer, "type", None) is None, f"the last event is {trailer!r}, not Rungate's trailer"
    assert trailer.run_id == run_id
    assert trailer.provider == "openai"
    assert trailer.tokens == {"input": usage.input_tokens, "output": usage.output_tokens}

    run = run_of(admin, run_id)
    assert run["steps_count"] == 1
    assert float(run["total_cost_usd"]) == pytest.approx(trailer.cost_usd, abs=2e-6)


def test_responses_stream_helper_yields_text_and_the_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model=OPENAI_MODEL, input="helper stream") as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()

    assert text == "Echo: helper stream"
    assert final.output_text == "Echo: helper stream"
    assert final.usage is not None and final.usage.output_tokens > 0


def test_responses_function_tool_comes_back_as_a_function_call_item(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=OPENAI_MODEL, input="weather in Paris? use tool", tools=[WEATHER_TOOL])

    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.call_id
    assert json.loads(call.arguments) == {}
    assert response.output_text == ""


def test_responses_function_call_output_is_answered_with_text(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model=OPENAI_MODEL, input="weather in Paris? use tool", tools=[WEATHER_TOOL])
    call = next(item for item in first.output if item.type == "function_call")

    second = oai.responses.create(
        model=OPENAI_MODEL,
        tools=[WEATHER_TOOL],
        input=[
            {"role": "user", "content": "weather in Paris? use tool"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )

    assert second.output_text == "Echo: weather in Paris? use tool"
    assert all(item.type == "message" for item in second.output)


def test_responses_streamed_function_call_reassembles_its_arguments(oai: openai.OpenAI) -> None:
    stream = oai.responses.create(
        model=OPENAI_MODEL,
        input="weather?",
        tools=[WEATHER_TOOL],
        stream=True,
        extra_body={"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}},
    )
    typed = [event for event in stream if getattr(event, "type", None)]

    arguments = "".join(e.delta for e in typed if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris"}
    done = [e.item for e in typed if e.type == "response.output_item.done"]
    assert [item.type for item in done] == ["function_call"]
    assert done[0].name == "get_weather"


def test_responses_model_outside_the_policy_raises_permission_denied(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.responses.create(model="gpt-3.5-turbo", input="not allowed")

    assert raised.value.status_code == 403
    assert raised.value.code == "model_not_allowed"
    error = governance_block(raised.value.response, 403, "model_not_allowed")
    assert "gpt-3.5-turbo" in error["message"]


def test_responses_stream_refusal_is_json_before_any_event(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.responses.create(model="gpt-3.5-turbo", input="not allowed", stream=True)

    governance_block(raised.value.response, 403, "model_not_allowed")


def flat_tool(name: str) -> dict:
    """A Responses function tool: flat, with no `function` wrapper as Chat Completions has."""
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def guarded(gw: str, admin: rungate.Admin, make_agent):
    """An openai client whose agent's policy blocks `delete_database`."""
    policy = admin.policies.create(
        name=f"responses-guarded-{uuid.uuid4().hex[:6]}", allowed_models=ALLOWED_MODELS, blocked_tools=["delete_database"]
    )["data"]
    client = openai_client(gw, make_agent(policy_id=policy["id"]).token)
    yield client
    client.close()


def test_responses_declaring_a_blocked_tool_is_refused(guarded: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        guarded.responses.create(model=OPENAI_MODEL, input="clean up", tools=[flat_tool("delete_database")])

    error = governance_block(raised.value.response, 403, "tool_blocked")
    assert error["details"]["tool"] == "delete_database"


def test_responses_model_proposing_a_blocked_tool_is_refused(guarded: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        guarded.responses.create(
            model=OPENAI_MODEL,
            input="tidy up",
            tools=[flat_tool("list_tables")],
            extra_body={"mock": {"tool_call": {"name": "delete_database"}}},
        )

    error = governance_block(raised.value.response, 403, "tool_blocked")
    assert error["details"]["tool"] == "delete_database"


def test_responses_stream_proposing_a_blocked_tool_is_cut_with_an_error_event(guarded: openai.OpenAI) -> None:
    # The stream has started when the model names the tool: the gateway cuts it there, so the
    # call never reaches the agent, and says why in the stream's own error event.
    stream = guarded.responses.create(
        model=OPENAI_MODEL,
        input="tidy up",
        tools=[flat_tool("list_tables")],
        stream=True,
        extra_body={"mock": {"tool_call": {"name": "delete_database"}}},
    )
    events = list(stream)
    types = [getattr(e, "type", None) for e in events]
    proposed = [
        e.item.name
        for e in events
        if getattr(e, "type", None) in ("response.output_item.added", "response.output_item.done")
        and getattr(e.item, "type", None) == "function_call"
    ]
    assert proposed == [], f"the blocked proposal reached the agent: {proposed}"
    errors = [e for e in events if getattr(e, "type", None) == "error"]
    assert errors, types
    assert errors[0].code == "tool_blocked"
    assert "response.completed" not in types
