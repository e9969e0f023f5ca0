"""The official openai SDK, unmodified, through the gateway: answers, usage, cost headers, streams, tools."""

from __future__ import annotations

import asyncio
import json
import re

import openai

from clients import OPENAI_MODEL, async_openai_client, scripted_tool_call, scripted_usage, user

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SIX_DECIMALS = re.compile(r"\d+\.\d{6}")


def test_chat_completion_returns_the_provider_answer_and_usage(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model=OPENAI_MODEL, messages=user("hello through rungate"))

    choice = completion.choices[0]
    assert choice.message.content == "Echo: hello through rungate"
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_completion_headers_carry_run_step_and_cost(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user("what does it cost?"))
    completion = raw.parse()
    headers = raw.headers

    assert completion.choices[0].message.content == "Echo: what does it cost?"
    assert headers.get("x-rungate-run-id")
    assert headers.get("x-rungate-step-id")
    assert headers.get("x-rungate-provider") == "openai"
    assert headers.get("x-rungate-model") == OPENAI_MODEL
    cost = headers.get("x-rungate-cost-usd", "")
    assert SIX_DECIMALS.fullmatch(cost), f"x-rungate-cost-usd {cost!r} is not 6 decimals"
    assert float(cost) > 0
    assert int(headers.get("x-rungate-tokens-used", "-1")) == completion.usage.total_tokens


def test_cost_header_is_tokens_times_the_model_price(oai: openai.OpenAI) -> None:
    # gpt-4o-mini: $0.15 / M input, $0.60 / M output → 1000 in + 500 out = $0.000150 + $0.000300.
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user("priced"), extra_body=scripted_usage(1000, 500)
    )

    assert raw.headers.get("x-rungate-cost-usd") == "0.000450"
    assert raw.headers.get("x-rungate-tokens-used") == "1500"


def test_unknown_body_fields_reach_the_provider_untouched(oai: openai.OpenAI) -> None:
    # The mock obeys its "mock" field only if the gateway forwarded it as sent.
    completion = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=user("passthrough"), extra_body=scripted_usage(1234, 56)
    )

    assert completion.usage.prompt_tokens == 1234
    assert completion.usage.completion_tokens == 56


def test_roles_the_gateway_does_not_know_are_passed_through(oai: openai.OpenAI) -> None:
    # Some agents end with a trailing system message; the provider, not the gateway, decides.
    messages = [*user("still answered"), {"role": "system", "content": "be brief"}]
    completion = oai.chat.completions.create(model=OPENAI_MODEL, messages=messages)

    assert completion.choices[0].message.content == "Echo: still answered"


def test_stream_text_concatenates_and_hides_the_usage_chunk_nobody_asked_for(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model=OPENAI_MODEL, messages=user("stream me please"), stream=True)
    chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: stream me please"
    assert chunks, "no chunk at all"
    assert all(chunk.choices for chunk in chunks), "a usage-only chunk (empty choices) reached a client that did not ask for it"
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_delivers_the_usage_chunk_when_the_client_asks(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=user("count me"),
        stream=True,
        stream_options={"include_usage": True},
        extra_body=scripted_usage(321, 7),
    )
    chunks = list(stream)

    usage_chunks = [chunk for chunk in chunks if not chunk.choices]
    assert len(usage_chunks) == 1
    assert chunks[-1] is usage_chunks[0], "the usage chunk must be the last one"
    assert usage_chunks[0].usage.prompt_tokens == 321
    assert usage_chunks[0].usage.completion_tokens == 7
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: count me"


def test_stream_headers_name_the_run_at_stream_open(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user("headers"), stream=True)
    headers = raw.headers
    chunks = list(raw.parse())

    assert headers.get("content-type", "").startswith("text/event-stream")
    assert headers.get("x-rungate-run-id")
    assert headers.get("x-rungate-provider") == "openai"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: headers"


def test_tool_call_comes_back_as_the_provider_sent_it(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL],
        extra_body=scripted_tool_call("get_weather", {"city": "Paris"}),
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'


def test_streamed_tool_call_reassembles_name_and_arguments(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL],
        stream=True,
        extra_body=scripted_tool_call("get_weather", {"city": "Paris"}),
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        assert chunk.choices, "usage-only chunk leaked into a stream that did not ask for usage"
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            name += call.function.name or ""
            arguments += call.function.arguments or ""
        finish = choice.finish_reason or finish

    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"


def test_models_list_shows_what_the_policy_allows(oai: openai.OpenAI) -> None:
    ids = {model.id for model in oai.models.list()}

    assert {"gpt-4o-mini", "gpt-4o"} <= ids
    assert "gpt-3.5-turbo" not in ids


def test_async_client_streams_the_echo(gw: str, agent) -> None:
    async def scenario() -> tuple[str, int]:
        async with async_openai_client(gw, agent.token) as client:
            stream = await client.chat.completions.create(
                model=OPENAI_MODEL, messages=user("async stream"), stream=True
            )
            text, empty = "", 0
            async for chunk in stream:
                if not chunk.choices:
                    empty += 1
                    continue
                text += chunk.choices[0].delta.content or ""
            return text, empty

    text, empty_chunks = asyncio.run(scenario())
    assert text == "Echo: async stream"
    assert empty_chunks == 0


def test_async_client_plain_call(gw: str, agent) -> None:
    async def scenario():
        async with async_openai_client(gw, agent.token) as client:
            return await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=user("async"))

    raw = asyncio.run(scenario())
    assert raw.parse().choices[0].message.content == "Echo: async"
    assert raw.headers.get("x-rungate-model") == "gpt-4o"
