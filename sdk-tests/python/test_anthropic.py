"""The official anthropic SDK, unmodified, through the gateway (it authenticates with `x-api-key`)."""

from __future__ import annotations

import asyncio

import anthropic
import rungate

from clients import ANTHROPIC_MODEL, async_anthropic_client, scripted_tool_call, scripted_usage, user

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_message_returns_the_provider_answer_and_usage(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=user("hello claude"))

    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Echo: hello claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


def test_message_headers_carry_run_step_and_cost(claude: anthropic.Anthropic) -> None:
    # claude-sonnet-4: $3 / M input, $15 / M output → 1000 in + 500 out = $0.003000 + $0.007500.
    raw = claude.messages.with_raw_response.create(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=user("priced"), extra_body=scripted_usage(1000, 500)
    )
    message = raw.parse()
    headers = raw.headers

    assert message.content[0].text == "Echo: priced"
    assert message.usage.input_tokens == 1000
    assert message.usage.output_tokens == 500
    assert headers.get("x-rungate-run-id")
    assert headers.get("x-rungate-step-id")
    assert headers.get("x-rungate-provider") == "anthropic"
    assert headers.get("x-rungate-model") == ANTHROPIC_MODEL
    assert headers.get("x-rungate-cost-usd") == "0.010500"
    assert headers.get("x-rungate-tokens-used") == "1500"


def test_stream_helper_yields_text_and_final_usage(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=ANTHROPIC_MODEL, max_tokens=256, messages=user("stream me claude")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Echo: stream me claude"
    assert final.content[0].text == "Echo: stream me claude"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 0


def test_raw_event_stream_follows_the_anthropic_grammar(claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=user("raw events"), stream=True,
        extra_body=scripted_usage(40, 3),
    )
    headers = raw.headers
    received = list(raw.parse())
    kinds = [getattr(event, "type", None) for event in received]

    assert headers.get("x-rungate-provider") == "anthropic"
    assert headers.get("x-rungate-run-id")
    assert "message_stop" in kinds
    stop = kinds.index("message_stop")
    events, trailer = received[: stop + 1], kinds[stop + 1 :]
    # The `event: rungate` SSE event follows message_stop (SPEC §3.3); the SDK hands it over as an
    # event without a type, which an agent's `event.type` dispatch ignores. Nothing else may follow.
    assert trailer in ([], [None]), f"after message_stop the SDK saw {trailer}"
    assert kinds[0] == "message_start"
    assert kinds[stop - 1] == "message_delta"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Echo: raw events"
    assert events[0].message.usage.input_tokens == 40
    assert [e.usage.output_tokens for e in events if e.type == "message_delta"] == [3]


def test_tool_use_block_comes_back_as_the_provider_sent_it(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL],
        extra_body=scripted_tool_call("get_weather", {"city": "Paris"}),
    )

    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert message.stop_reason == "tool_use"
    assert len(tool_uses) == 1
    assert tool_uses[0].name == "get_weather"
    assert tool_uses[0].input == {"city": "Paris"}
    assert tool_uses[0].id


def test_streamed_tool_use_reassembles_its_input(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL],
        extra_body=scripted_tool_call("get_weather", {"city": "Paris"}),
    ) as stream:
        final = stream.get_final_message()

    tool_uses = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", {"city": "Paris"})]


def test_count_tokens_is_forwarded_and_never_charged(
    claude: anthropic.Anthropic, admin: rungate.Admin, agent
) -> None:
    counted = claude.messages.count_tokens(model=ANTHROPIC_MODEL, messages=user("x" * 400))

    assert counted.input_tokens == 100  # the mock counts characters / 4
    runs = admin.runs.list(agent_id=agent.id)["data"]
    assert sum(float(run.get("total_cost_usd") or 0) for run in runs) == 0
    assert sum(int(run.get("steps_count") or 0) for run in runs) == 0


def test_async_client_plain_and_streamed(gw: str, agent) -> None:
    async def scenario():
        async with async_anthropic_client(gw, agent.token) as client:
            message = await client.messages.create(
                model="claude-3-5-haiku-20241022", max_tokens=64, messages=user("async claude")
            )
            async with client.messages.stream(
                model=ANTHROPIC_MODEL, max_tokens=64, messages=user("async claude stream")
            ) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                final = await stream.get_final_message()
            return message, text, final

    message, text, final = asyncio.run(scenario())
    assert message.content[0].text == "Echo: async claude"
    assert message.usage.output_tokens > 0
    assert text == "Echo: async claude stream"
    assert final.usage.input_tokens > 0
