"""Gemini behind the gateway: agents keep their OpenAI or Anthropic SDK, name a Gemini model, and get
their own format back while Rungate speaks Gemini's `generateContent` to the provider.

The Gemini key points at a mock of its own that refuses any request without that key in Gemini's
`x-goog-api-key` header (or `?key=`), so an answer proves the call went out Gemini-style; the ids
it sends (`mock-response-N`, Gemini's `responseId`) come back in the translated answer.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import anthropic
import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, anthropic_client, openai_client, user
from conftest import Agent
from conditions import eventually

GEMINI_KEY = "gm-sdk-tests-key"
GEMINI_MODEL = "gemini-2.5-flash"
PREFIXED = f"gemini/{GEMINI_MODEL}"
GEMINI_IDS = "mock-response-"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def gemini_key(admin: rungate.Admin, spawn_mock: Callable[..., Any]) -> dict[str, Any]:
    mock = spawn_mock("--require-key", GEMINI_KEY, name="gemini-mock")
    return admin.provider_keys.create(
        provider="gemini", name=f"mock-gemini-{uuid.uuid4().hex[:6]}", api_key=GEMINI_KEY, base_url=mock.base_url
    )["data"]


@pytest.fixture(scope="module")
def gemini_policy(admin: rungate.Admin) -> dict[str, Any]:
    name = f"sdk-tests-gemini-{uuid.uuid4().hex[:6]}"
    return admin.policies.create(name=name, allowed_models=[*ALLOWED_MODELS, "gemini-2.5*"])["data"]


@pytest.fixture
def agent(
    make_agent: Callable[..., Agent],
    provider_keys: dict[str, dict[str, Any]],
    gemini_key: dict[str, Any],
    gemini_policy: dict[str, Any],
) -> Agent:
    keys = {provider: data["id"] for provider, data in provider_keys.items()}
    return make_agent(policy_id=gemini_policy["id"], provider_keys={**keys, "gemini": gemini_key["id"]})


# `oai` and `claude` (conftest.py) are built for the `agent` above, which overrides conftest's.


def assert_gemini_step(admin: rungate.Admin, headers: Any) -> None:
    """The gateway says it went to Gemini, and the run's step says so too."""
    assert headers.get("x-rungate-provider") == "gemini"
    assert headers.get("x-rungate-model") == GEMINI_MODEL
    run_id, step_id = headers.get("x-rungate-run-id"), headers.get("x-rungate-step-id")
    assert run_id
    steps = eventually(lambda: admin.runs.steps(run_id)["data"], lambda found: bool(found))
    step = next(s for s in steps if step_id is None or s["id"] == step_id)
    assert step["provider"] == "gemini"
    assert step["model"] == GEMINI_MODEL
    assert step["status"] == "success"
    assert step["tokens"]["input"] > 0 and step["tokens"]["output"] > 0


def test_openai_chat_with_a_gemini_model_gets_a_chat_completion(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=PREFIXED, messages=user("hello gemini"))
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.id.startswith(GEMINI_IDS), completion.id
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello gemini"
    assert choice.finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert_gemini_step(admin, raw.headers)


def test_openai_chat_stream_from_gemini_arrives_as_chunks(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=PREFIXED, messages=user("stream from gemini"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: stream from gemini"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    assert_gemini_step(admin, raw.headers)


def test_openai_chat_tool_call_from_gemini_is_an_openai_tool_call(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model=PREFIXED,
        messages=user("weather in Paris? use tool"),
        tools=[WEATHER_TOOL],
    )

    # The mock calls the first declared tool only if the tools reached it as functionDeclarations.
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {}


def test_anthropic_messages_with_a_gemini_model_get_a_message(claude: anthropic.Anthropic, admin: rungate.Admin) -> None:
    raw = claude.messages.with_raw_response.create(model=GEMINI_MODEL, max_tokens=64, messages=user("hello from claude sdk"))
    message = raw.parse()

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith(GEMINI_IDS), message.id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Echo: hello from claude sdk"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert_gemini_step(admin, raw.headers)


def test_anthropic_stream_from_gemini_arrives_as_message_events(claude: anthropic.Anthropic, admin: rungate.Admin) -> None:
    with claude.messages.stream(model=GEMINI_MODEL, max_tokens=64, messages=user("stream via claude sdk")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers

    assert text == "Echo: stream via claude sdk"
    assert final.content[0].text == "Echo: stream via claude sdk"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert_gemini_step(admin, headers)


def test_responses_with_a_gemini_model_get_a_response(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.responses.with_raw_response.create(model=PREFIXED, input="responses to gemini")
    response = raw.parse()

    assert response.output_text == "Echo: responses to gemini"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert_gemini_step(admin, raw.headers)


def test_geminis_own_refusal_reaches_each_sdk_in_its_own_error_format(
    gw: str,
    admin: rungate.Admin,
    make_agent: Callable[..., Agent],
    gemini_key: dict[str, Any],
    gemini_policy: dict[str, Any],
) -> None:
    # A second key on the same key-checking mock, with a secret Gemini does not accept.
    wrong = admin.provider_keys.create(
        provider="gemini", name=f"wrong-gemini-{uuid.uuid4().hex[:6]}", api_key="not-the-key", base_url=gemini_key["base_url"]
    )["data"]
    owner = make_agent(policy_id=gemini_policy["id"], provider_keys={"gemini": wrong["id"]})
    oai, claude = openai_client(gw, owner.token), anthropic_client(gw, owner.token)
    try:
        with pytest.raises(openai.AuthenticationError) as from_openai:
            oai.chat.completions.create(model=PREFIXED, messages=user("wrong key"))
        with pytest.raises(anthropic.AuthenticationError) as from_anthropic:
            claude.messages.create(model=GEMINI_MODEL, max_tokens=16, messages=user("wrong key"))
    finally:
        oai.close()
        claude.close()

    openai_body = from_openai.value.response.json()
    assert "type" not in openai_body, f"an OpenAI error has no top-level type: {openai_body}"
    assert "API key not valid" in openai_body["error"]["message"]
    anthropic_body = from_anthropic.value.response.json()
    assert anthropic_body["type"] == "error"
    assert anthropic_body["error"]["type"] == "authentication_error"
    assert "API key not valid" in anthropic_body["error"]["message"]


def test_a_gemini_call_is_priced(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=PREFIXED, messages=user("what does gemini cost?"))

    assert raw.headers.get("x-rungate-warning") is None, raw.headers.get("x-rungate-warning")
    assert float(raw.headers.get("x-rungate-cost-usd", "0")) > 0
