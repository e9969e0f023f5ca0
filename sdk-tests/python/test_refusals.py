"""Refusals as each client sees them: bad tokens, disabled agents, models outside the policy, and
malformed requests, with the exception class each SDK raises and the body it can read."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
import rungate

from clients import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    TIMEOUT_S,
    anthropic_client,
    bearer,
    openai_client,
    user,
)
from refusals import error_of, governance_block

BAD_TOKEN = "rg_agt_" + "x" * 40


def assert_invalid_api_key(response) -> None:
    assert response.status_code == 401, response.text
    error = error_of(response)
    assert error.get("code") == "invalid_api_key", error
    assert error.get("message") == "Invalid API key", error


def test_openai_sdk_with_a_bad_token_gets_401(gw: str) -> None:
    with openai_client(gw, BAD_TOKEN) as client, pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))

    assert_invalid_api_key(raised.value.response)
    assert error_of(raised.value.response).get("type") == "unauthorized"


def test_openai_sdk_stream_with_a_bad_token_gets_401_before_the_stream(gw: str) -> None:
    with openai_client(gw, BAD_TOKEN) as client, pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"), stream=True)

    assert_invalid_api_key(raised.value.response)


def test_anthropic_sdk_with_a_bad_token_gets_401(gw: str) -> None:
    with anthropic_client(gw, BAD_TOKEN) as client, pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=32, messages=user("hi"))

    assert_invalid_api_key(raised.value.response)


def test_rungate_sdk_with_a_bad_token_gets_401(gw: str) -> None:
    with rungate.Rungate(api_key=BAD_TOKEN, base_url=gw, timeout=TIMEOUT_S) as client:
        with pytest.raises(rungate.AuthenticationError) as raised:
            client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))

    assert raised.value.status_code == 401
    assert raised.value.body["error"]["code"] == "invalid_api_key"


def test_missing_token_gets_401(gw: str) -> None:
    answer = httpx.post(f"{gw}/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": user("hi")}, timeout=TIMEOUT_S)

    assert_invalid_api_key(answer)


def test_disabled_agent_is_refused_until_enabled_again(
    oai: openai.OpenAI, rg: rungate.Rungate, admin: rungate.Admin, agent
) -> None:
    oai.chat.completions.create(model=OPENAI_MODEL, messages=user("while active"))

    admin.agents.update(agent.id, status="disabled")

    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=user("while disabled"))
    governance_block(raised.value.response, 403, "agent_disabled")
    with pytest.raises(rungate.AgentDisabledError) as sdk_raised:
        rg.chat.completions.create(model=OPENAI_MODEL, messages=user("while disabled"))
    assert sdk_raised.value.status_code == 403
    assert sdk_raised.value.governance_code == "agent_disabled"

    admin.agents.update(agent.id, status="active")

    again = oai.chat.completions.create(model=OPENAI_MODEL, messages=user("active again"))
    assert again.choices[0].message.content == "Echo: active again"


def test_disabled_agent_stream_is_refused_with_json_before_the_stream(
    oai: openai.OpenAI, admin: rungate.Admin, agent
) -> None:
    admin.agents.update(agent.id, status="disabled")

    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=user("stream"), stream=True)
    assert raised.value.response.headers.get("content-type", "").startswith("application/json")
    governance_block(raised.value.response, 403, "agent_disabled")


def test_model_outside_the_policy_is_refused(oai: openai.OpenAI, rg: rungate.Rungate) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.chat.completions.create(model="gpt-3.5-turbo", messages=user("old model"))
    error = governance_block(raised.value.response, 403, "model_not_allowed")
    assert "gpt-3.5-turbo" in error["message"]

    with pytest.raises(rungate.ModelNotAllowedError) as sdk_raised:
        rg.chat.completions.create(model="gpt-3.5-turbo", messages=user("old model"))
    assert sdk_raised.value.status_code == 403
    assert sdk_raised.value.governance_code == "model_not_allowed"


def test_model_outside_the_policy_is_refused_for_streams_too(rg: rungate.Rungate) -> None:
    with pytest.raises(rungate.ModelNotAllowedError):
        with rg.chat.completions.stream(model="gpt-3.5-turbo", messages=user("old model")) as stream:
            list(stream.text_stream)


def test_anthropic_model_outside_the_policy_is_refused(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        claude.messages.create(model="claude-3-opus-20240229", max_tokens=32, messages=user("not allowed"))

    governance_block(raised.value.response, 403, "model_not_allowed")


def test_malformed_json_is_400_in_the_openai_dialect(gw: str, agent) -> None:
    answer = httpx.post(
        f"{gw}/v1/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={**bearer(agent.token), "content-type": "application/json"},
        timeout=TIMEOUT_S,
    )

    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert "type" not in body, f"OpenAI errors have no top-level type: {body}"
    assert body["error"]["code"] == "invalid_request"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_malformed_json_is_400_in_the_anthropic_dialect(gw: str, agent) -> None:
    answer = httpx.post(
        f"{gw}/v1/messages",
        content=b'{"model": "claude-sonnet-4-20250514", "max_tokens": ',
        headers={"x-api-key": agent.token, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        timeout=TIMEOUT_S,
    )

    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body.get("type") == "error", f"not the Anthropic error shape: {body}"
    assert body["error"].get("type") == "invalid_request_error"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"]


def test_missing_model_is_400_invalid_request(gw: str, agent) -> None:
    answer = httpx.post(
        f"{gw}/v1/chat/completions", json={"messages": user("no model")}, headers=bearer(agent.token), timeout=TIMEOUT_S
    )

    assert answer.status_code == 400, answer.text
    assert error_of(answer).get("code") == "invalid_request"
