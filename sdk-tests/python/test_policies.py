"""Policies as the agent feels them: pinning a run to a named policy, and a run budget that stops
spending with a 402 the rungate SDK turns into `BudgetExceededError`."""

from __future__ import annotations

import uuid

import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, OPENAI_MODEL, TIMEOUT_S, openai_client, scripted_usage, user
from refusals import error_of, governance_block


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_policy_header_pins_a_new_run_to_that_policy(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    strict = admin.policies.create(name=unique("only-gpt-4o"), allowed_models=["gpt-4o"])["data"]
    run_id = f"sdk-run-{uuid.uuid4()}"
    pinned = {"x-rungate-run-id": run_id, "x-rungate-policy": strict["name"]}

    allowed = oai.chat.completions.create(model="gpt-4o", messages=user("pinned"), extra_headers=pinned)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=user("pinned"), extra_headers=pinned)

    assert allowed.choices[0].message.content == "Echo: pinned"
    governance_block(raised.value.response, 403, "model_not_allowed")
    run = admin.runs.get(run_id)["data"]
    assert run["policy_id"] == strict["id"]
    assert run["policy_version"] == 1


def test_policy_header_on_an_existing_run_is_ignored_with_a_warning(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    strict = admin.policies.create(name=unique("only-gpt-4o"), allowed_models=["gpt-4o"])["data"]
    run_id = f"sdk-run-{uuid.uuid4()}"
    oai.chat.completions.create(model=OPENAI_MODEL, messages=user("first"), extra_headers={"x-rungate-run-id": run_id})

    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=user("second"),
        extra_headers={"x-rungate-run-id": run_id, "x-rungate-policy": strict["name"]},
    )

    assert raw.parse().choices[0].message.content == "Echo: second"
    assert raw.headers.get("x-rungate-warning")


def test_unknown_policy_header_is_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(
            model=OPENAI_MODEL, messages=user("x"), extra_headers={"x-rungate-policy": unique("no-such-policy")}
        )

    assert error_of(raised.value.response).get("code") == "invalid_request"


def test_run_budget_stops_spending_with_402(gw: str, admin: rungate.Admin, make_agent) -> None:
    # One call settles $0.00045 against a $0.0004 cap (its estimate, 100 output tokens max, fits);
    # the next one finds the cap reached.
    capped = admin.policies.create(
        name=unique("capped"), allowed_models=ALLOWED_MODELS, budget={"hard_limit_usd": 0.0004}
    )["data"]
    agent = make_agent(policy_id=capped["id"])
    run_id = f"sdk-run-{uuid.uuid4()}"
    headers = {"x-rungate-run-id": run_id}

    with openai_client(gw, agent.token) as client:
        first = client.chat.completions.create(
            model=OPENAI_MODEL, messages=user("spend"), max_tokens=100, extra_headers=headers,
            extra_body=scripted_usage(1000, 500),
        )
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(
                model=OPENAI_MODEL, messages=user("over"), max_tokens=100, extra_headers=headers
            )

    assert first.choices[0].message.content == "Echo: spend"
    governance_block(raised.value.response, 402, "budget_exceeded")
    with rungate.Rungate(api_key=agent.token, base_url=gw, timeout=TIMEOUT_S) as rg, pytest.raises(rungate.BudgetExceededError) as sdk_raised:
        rg.chat.completions.create(model=OPENAI_MODEL, messages=user("over"), max_tokens=100, run_id=run_id)
    assert sdk_raised.value.status_code == 402
    assert sdk_raised.value.run_id == run_id
    assert float(admin.runs.get(run_id)["data"]["total_cost_usd"]) == pytest.approx(0.00045)
