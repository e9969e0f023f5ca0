"""The rungate 0.1.0 SDK from PyPI (compat): metadata from headers and from the trailing
`event: rungate` SSE event, and its `run()` helper that groups calls, logs tool calls and completes."""

from __future__ import annotations

import asyncio

import pytest
import rungate

from clients import OPENAI_MODEL, TIMEOUT_S, scripted_usage, user
from conditions import eventually

# gpt-4o-mini at 1000 input + 500 output tokens: $0.000150 + $0.000300.
PRICED_USAGE = scripted_usage(1000, 500)
PRICED_COST = 0.00045


def test_completion_metadata_comes_from_the_headers(rg: rungate.Rungate, admin: rungate.Admin) -> None:
    completion = rg.chat.completions.create(model=OPENAI_MODEL, messages=user("metadata"), extra_body=PRICED_USAGE)

    assert completion.choices[0]["message"]["content"] == "Echo: metadata"
    meta = completion.rungate
    assert meta.run_id and meta.step_id
    assert meta.provider == "openai"
    assert meta.model == OPENAI_MODEL
    assert meta.cost_usd == pytest.approx(PRICED_COST)
    assert meta.tokens_used == 1500
    assert meta.governance is None
    assert admin.runs.get(meta.run_id)["data"]["steps_count"] == 1


def test_stream_helper_exposes_cost_from_the_trailing_rungate_event(
    rg: rungate.Rungate, admin: rungate.Admin
) -> None:
    with rg.chat.completions.stream(model=OPENAI_MODEL, messages=user("stream with cost"), extra_body=PRICED_USAGE) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_completion()
        meta = stream.rungate

    assert text == "Echo: stream with cost"
    assert final.choices[0]["message"]["content"] == "Echo: stream with cost"
    assert meta.run_id, "no `event: rungate` SSE event after the stream"
    assert meta.step_id
    assert meta.provider == "openai"
    assert meta.model == OPENAI_MODEL
    assert meta.cost_usd == pytest.approx(PRICED_COST)
    assert meta.tokens_used == 1500
    run = eventually(lambda: admin.runs.get(meta.run_id)["data"], lambda r: float(r["total_cost_usd"]) > 0)
    assert run["steps_count"] == 1
    assert float(run["total_cost_usd"]) == pytest.approx(PRICED_COST)


def test_low_level_stream_yields_only_provider_chunks(rg: rungate.Rungate) -> None:
    with rg.chat.completions.create(model=OPENAI_MODEL, messages=user("low level"), stream=True, extra_body=PRICED_USAGE) as stream:
        chunks = list(stream)
        meta = stream.rungate

    assert all(chunk.get("choices") for chunk in chunks), "a usage-only chunk reached a client that did not ask for it"
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert text == "Echo: low level"
    assert meta.cost_usd == pytest.approx(PRICED_COST)
    assert meta.tokens_used == 1500
    assert meta.run_id


def test_run_helper_groups_calls_logs_tools_and_completes(rg: rungate.Rungate, admin: rungate.Admin) -> None:
    with rg.run(name="research") as run:
        first = run.chat.completions.create(model=OPENAI_MODEL, messages=user("step one"), extra_body=PRICED_USAGE)
        step = run.log_tool_call(
            name="web_search", request={"q": "rungate"}, response={"hits": 3}, latency_ms=12, cost_usd=0.01
        )
        with run.chat.completions.stream(model=OPENAI_MODEL, messages=user("step two"), extra_body=PRICED_USAGE) as stream:
            second_text = "".join(stream.text_stream)

    assert first.choices[0]["message"]["content"] == "Echo: step one"
    assert first.rungate.run_id == run.id
    assert second_text == "Echo: step two"
    assert step.get("id")
    assert step.get("model") == "web_search"
    assert run.budget.total_cost == pytest.approx(2 * PRICED_COST)

    data = eventually(
        lambda: admin.runs.get(run.id)["data"],
        lambda d: float(d["total_cost_usd"]) >= 2 * PRICED_COST + 0.01 - 1e-9,
    )
    assert data["id"] == run.id
    assert data["status"] == "completed"
    assert data["steps_count"] == 3
    assert float(data["total_cost_usd"]) == pytest.approx(2 * PRICED_COST + 0.01)

    steps = admin.runs.steps(run.id)["data"]
    tools = [s for s in steps if s.get("type") == "tool_call"]
    assert len(tools) == 1
    assert tools[0]["model"] == "web_search"
    assert float(tools[0]["cost_usd"]) == pytest.approx(0.01)
    assert sorted(s.get("type") for s in steps) == ["llm_call", "llm_call", "tool_call"]


def test_tool_call_on_an_unknown_run_is_404(rg: rungate.Rungate) -> None:
    orphan = rg.runs.resume("run-that-was-never-started")

    with pytest.raises(rungate.NotFoundError) as raised:
        orphan.log_tool_call(name="web_search", cost_usd=0.01)
    assert raised.value.status_code == 404


def test_async_client_stream_metadata(gw: str, agent) -> None:
    async def scenario():
        async with rungate.AsyncRungate(api_key=agent.token, base_url=gw, timeout=TIMEOUT_S) as client:
            async with client.chat.completions.stream(
                model=OPENAI_MODEL, messages=user("async rungate"), extra_body=PRICED_USAGE
            ) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                return text, stream.rungate

    text, meta = asyncio.run(scenario())
    assert text == "Echo: async rungate"
    assert meta.cost_usd == pytest.approx(PRICED_COST)
    assert meta.run_id
