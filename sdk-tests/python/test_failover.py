"""Cross-vendor failover as an agent sees it: its OpenAI provider answers every call with a 500, its
policy routes on to Anthropic (with `model_map`), and the agent still gets a normal answer in the
OpenAI format it sent, with `x-rungate-failover: 1` and both attempts in the run.

Each test gets its own failing provider key, so the circuit breaker one key builds up over
consecutive failures never decides another test's outcome.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, OPENAI_MODEL, get_json, openai_client, user
from conftest import Agent
from conditions import eventually

FALLBACK_MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def failing_openai_url(spawn_mock: Callable[..., Any]) -> str:
    return spawn_mock("--script", '{"status": 500}', name="failing-openai").base_url


@pytest.fixture(scope="module")
def failover_policy(admin: rungate.Admin) -> dict[str, Any]:
    return admin.policies.create(
        name=f"sdk-tests-failover-{uuid.uuid4().hex[:6]}",
        allowed_models=ALLOWED_MODELS,
        routing={
            "default_chain": ["anthropic"],
            "retry_on": [429, "5xx", "timeout"],
            "max_retries": 0,
            "timeout_ms": 10_000,
            "model_map": {OPENAI_MODEL: {"anthropic": FALLBACK_MODEL}},
        },
    )["data"]


def mock_key(admin: rungate.Admin, provider: str, base_url: str) -> str:
    """A fresh provider key (its own circuit breaker) for `provider` at one of the mocks."""
    name = f"mock-{provider}-{uuid.uuid4().hex[:8]}"
    return admin.provider_keys.create(provider=provider, name=name, api_key="sk-mock", base_url=base_url)["data"]["id"]


@pytest.fixture
def agent(
    admin: rungate.Admin,
    make_agent: Callable[..., Agent],
    provider_keys: dict[str, dict[str, Any]],
    failing_openai_url: str,
    failover_policy: dict[str, Any],
) -> Agent:
    return make_agent(
        policy_id=failover_policy["id"],
        provider_keys={
            "openai": mock_key(admin, "openai", failing_openai_url),
            "anthropic": provider_keys["anthropic"]["id"],
        },
    )


@pytest.fixture
def oai(gw: str, agent: Agent) -> Iterator[openai.OpenAI]:
    client = openai_client(gw, agent.token)
    yield client
    client.close()


def assert_failed_over(admin: rungate.Admin, headers: Any) -> None:
    assert headers.get("x-rungate-failover") == "1"
    assert headers.get("x-rungate-provider") == "anthropic"
    assert headers.get("x-rungate-model") == FALLBACK_MODEL
    run_id = headers.get("x-rungate-run-id")
    assert run_id

    run = eventually(
        lambda: admin.runs.get(run_id)["data"],
        lambda found: found["steps_count"] >= 2 and float(found["total_cost_usd"]) > 0,
    )
    assert run["steps_count"] == 2
    assert float(run["total_cost_usd"]) > 0
    # Both attempts can fall in one millisecond, so they are matched by provider, not by order.
    steps = {step["provider"]: step for step in admin.runs.steps(run_id)["data"]}
    assert set(steps) == {"openai", "anthropic"}
    failed, answered = steps["openai"], steps["anthropic"]
    assert (failed["status"], failed["http_status"], failed["model"]) == ("error", 500, OPENAI_MODEL)
    assert (answered["status"], answered["model"]) == ("success", FALLBACK_MODEL)
    assert answered["id"] == headers.get("x-rungate-step-id")
    assert float(answered["cost_usd"]) > 0


def test_chat_completion_fails_over_to_anthropic_and_answers_in_openai_format(
    oai: openai.OpenAI, admin: rungate.Admin
) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user("primary is down"))
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Echo: primary is down"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert_failed_over(admin, raw.headers)


def test_chat_stream_fails_over_before_the_first_chunk(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user("stream despite the outage"), stream=True
    )
    chunks = list(raw.parse())

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.choices for chunk in chunks), "a usage-only chunk reached a client that did not ask for it"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "Echo: stream despite the outage"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert_failed_over(admin, raw.headers)


def test_responses_create_fails_over_and_answers_as_a_response(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.responses.with_raw_response.create(model=OPENAI_MODEL, input="responses despite the outage")
    response = raw.parse()

    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Echo: responses despite the outage"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert_failed_over(admin, raw.headers)


def test_responses_stream_fails_over_and_streams_response_events(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    raw = oai.responses.with_raw_response.create(model=OPENAI_MODEL, input="stream responses anyway", stream=True)
    typed = [event for event in raw.parse() if getattr(event, "type", None)]

    text = "".join(event.delta for event in typed if event.type == "response.output_text.delta")
    assert text == "Echo: stream responses anyway"
    assert typed[0].type == "response.created"
    assert typed[-1].type == "response.completed"
    assert typed[-1].response.usage.output_tokens > 0
    assert_failed_over(admin, raw.headers)


def test_when_every_provider_fails_the_agent_gets_502_listing_each(
    gw: str,
    admin: rungate.Admin,
    make_agent: Callable[..., Agent],
    failing_openai_url: str,
    failover_policy: dict[str, Any],
) -> None:
    # The always-500 mock answers Anthropic's route with a 500 too.
    doomed = make_agent(
        policy_id=failover_policy["id"],
        provider_keys={
            "openai": mock_key(admin, "openai", failing_openai_url),
            "anthropic": mock_key(admin, "anthropic", failing_openai_url),
        },
    )
    client = openai_client(gw, doomed.token)
    try:
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=OPENAI_MODEL, messages=user("nobody answers"))
    finally:
        client.close()

    assert raised.value.status_code == 502
    error = raised.value.response.json()["error"]
    assert error["code"] == "provider_error"
    assert [(d["provider"], d["status"]) for d in error["details"]] == [("openai", 500), ("anthropic", 500)]


def test_without_a_routing_chain_the_outage_is_a_502_naming_the_provider(
    gw: str, admin: rungate.Admin, make_agent: Callable[..., Agent], failing_openai_url: str
) -> None:
    lone = make_agent(provider_keys={"openai": mock_key(admin, "openai", failing_openai_url)})
    client = openai_client(gw, lone.token)
    try:
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=OPENAI_MODEL, messages=user("nobody to fail over to"))
    finally:
        client.close()

    assert raised.value.status_code == 502
    error = raised.value.response.json()["error"]
    assert error["code"] == "provider_error"
    assert [(d["provider"], d["status"]) for d in error["details"]] == [("openai", 500)]


def test_a_key_that_keeps_failing_is_skipped_once_its_circuit_opens(
    oai: openai.OpenAI, agent: Agent, admin: rungate.Admin, stack
) -> None:
    # The breaker opens after five consecutive failures of one key (the gateway's default).
    answered = [
        oai.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user(f"call {n}"))
        for n in range(6)
    ]

    assert [raw.headers.get("x-rungate-failover") for raw in answered] == ["1"] * 5 + ["0"]
    assert all(raw.headers.get("x-rungate-provider") == "anthropic" for raw in answered)
    assert answered[-1].parse().choices[0].message.content == "Echo: call 5"
    run_id = answered[-1].headers.get("x-rungate-run-id")
    steps = admin.runs.steps(run_id)["data"]
    assert sorted(step["provider"] for step in steps).count("openai") == 5, "the sixth call never tried openai"

    health = get_json(f"{stack.gateway_url}/api/providers/health", stack.password)
    assert health.status_code == 200, health.text
    key = next(k for k in health.json()["data"] if k["key_id"] == agent.created["provider_keys"]["openai"])
    assert key["circuit"] == "open"
    assert key["healthy"] is False
    assert key["consecutive_failures"] == 5


def test_a_primary_slower_than_timeout_ms_fails_over_on_timeout(
    gw: str, admin: rungate.Admin, make_agent: Callable[..., Agent], provider_keys: dict, spawn_mock
) -> None:
    slow = spawn_mock("--latency-ms", "5000", name="slow-openai")
    policy = admin.policies.create(
        name=f"sdk-tests-timeout-{uuid.uuid4().hex[:6]}",
        allowed_models=ALLOWED_MODELS,
        routing={
            "default_chain": ["anthropic"],
            "timeout_ms": 300,
            "retry_on": ["timeout"],
            "model_map": {OPENAI_MODEL: {"anthropic": FALLBACK_MODEL}},
        },
    )["data"]
    owner = make_agent(
        policy_id=policy["id"],
        provider_keys={"openai": mock_key(admin, "openai", slow.base_url), "anthropic": provider_keys["anthropic"]["id"]},
    )
    client = openai_client(gw, owner.token)
    try:
        raw = client.responses.with_raw_response.create(model=OPENAI_MODEL, input="no time to wait")
    finally:
        client.close()

    assert raw.parse().output_text == "Echo: no time to wait"
    assert raw.headers.get("x-rungate-failover") == "1"
    assert raw.headers.get("x-rungate-provider") == "anthropic"
    steps = {step["provider"]: step for step in admin.runs.steps(raw.headers["x-rungate-run-id"])["data"]}
    assert steps["openai"]["status"] == "timeout"
    assert steps["openai"]["latency_ms"] < 5000
    assert steps["anthropic"]["status"] == "success"
