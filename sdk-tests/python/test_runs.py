"""Run grouping and the run lifecycle as an agent sees it: explicit ids, auto-runs, new runs,
completion (idempotent), and what a closed or force-stopped run answers."""

from __future__ import annotations

import uuid

import anthropic
import openai
import pytest
import rungate

from clients import OPENAI_MODEL, get_json, openai_client, post_json, scripted_usage, user
from conditions import eventually
from refusals import error_of, governance_block


def new_run_id() -> str:
    return f"sdk-run-{uuid.uuid4()}"


def call(client: openai.OpenAI, text: str, **headers: str):
    return client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user(text), extra_headers=headers or None
    )


def test_calls_naming_one_run_id_share_that_run(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    run_id = new_run_id()
    first = call(oai, "one", **{"x-rungate-run-id": run_id})
    second = call(oai, "two", **{"x-rungate-run-id": run_id})

    assert first.headers.get("x-rungate-run-id") == run_id
    assert second.headers.get("x-rungate-run-id") == run_id
    step_ids = {first.headers.get("x-rungate-step-id"), second.headers.get("x-rungate-step-id")}
    assert len(step_ids) == 2 and None not in step_ids

    run = admin.runs.get(run_id)["data"]
    assert run["id"] == run_id
    assert run["status"] == "running"
    assert run["steps_count"] == 2
    assert float(run["total_cost_usd"]) > 0
    expected = sum(float(r.headers["x-rungate-cost-usd"]) for r in (first, second))
    assert float(run["total_cost_usd"]) == pytest.approx(expected, abs=2e-6)

    steps = admin.runs.steps(run_id)["data"]
    assert {step["id"] for step in steps} == step_ids
    assert all(step.get("type") == "llm_call" for step in steps)
    assert all(step.get("model") == OPENAI_MODEL for step in steps)


def test_agent_can_read_its_own_run(oai: openai.OpenAI, agent, gw: str) -> None:
    run_id = new_run_id()
    call(oai, "mine", **{"x-rungate-run-id": run_id})

    answer = get_json(f"{gw}/v1/runs/{run_id}", agent.token)
    assert answer.status_code == 200, answer.text
    run = answer.json()["data"]
    assert run["id"] == run_id
    assert run["status"] == "running"
    assert run["steps_count"] == 1


def test_calls_without_a_run_id_land_in_the_agents_auto_run(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    first = call(oai, "auto one")
    second = call(oai, "auto two")

    run_id = first.headers.get("x-rungate-run-id")
    assert run_id
    assert second.headers.get("x-rungate-run-id") == run_id
    assert admin.runs.get(run_id)["data"]["steps_count"] == 2


def test_new_run_header_starts_a_new_run_that_later_calls_join(oai: openai.OpenAI) -> None:
    before = call(oai, "old run").headers.get("x-rungate-run-id")
    fresh = call(oai, "new run", **{"x-rungate-new-run": "true"}).headers.get("x-rungate-run-id")
    after = call(oai, "continue").headers.get("x-rungate-run-id")

    assert fresh and fresh != before
    assert after == fresh


def test_two_agents_never_share_an_auto_run(gw: str, oai: openai.OpenAI, make_agent) -> None:
    other = openai_client(gw, make_agent().token)
    try:
        mine = call(oai, "mine").headers.get("x-rungate-run-id")
        theirs = call(other, "theirs").headers.get("x-rungate-run-id")
    finally:
        other.close()

    assert mine and theirs and mine != theirs


def test_completed_run_refuses_further_calls_with_409(oai: openai.OpenAI, agent, gw: str) -> None:
    run_id = new_run_id()
    call(oai, "before close", **{"x-rungate-run-id": run_id})

    done = post_json(f"{gw}/v1/runs/{run_id}/complete", agent.token, {"ended_reason": "sdk-tests"})
    assert done.status_code == 200, done.text
    assert done.json()["data"]["id"] == run_id
    assert done.json()["data"]["status"] == "completed"

    with pytest.raises(openai.ConflictError) as raised:
        call(oai, "after close", **{"x-rungate-run-id": run_id})
    assert raised.value.status_code == 409
    error = error_of(raised.value.response)
    assert error.get("code") == "run_closed"
    assert error.get("type") == "conflict"


def test_completing_twice_answers_200_with_the_same_run(oai: openai.OpenAI, agent, gw: str) -> None:
    run_id = new_run_id()
    call(oai, "once", **{"x-rungate-run-id": run_id})

    first = post_json(f"{gw}/v1/runs/{run_id}/complete", agent.token, {})
    second = post_json(f"{gw}/v1/runs/{run_id}/complete", agent.token, {})

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["data"]["id"] == first.json()["data"]["id"] == run_id
    assert second.json()["data"]["status"] == "completed"


def test_completing_an_unknown_run_is_404(agent, gw: str) -> None:
    answer = post_json(f"{gw}/v1/runs/{new_run_id()}/complete", agent.token, {})

    assert answer.status_code == 404, answer.text
    assert error_of(answer).get("type") == "not_found"


def test_rungate_sdk_run_is_closed_after_its_block(rg: rungate.Rungate, admin: rungate.Admin) -> None:
    with rg.run(name="short") as run:
        run.chat.completions.create(model=OPENAI_MODEL, messages=user("inside"))

    assert admin.runs.get(run.id)["data"]["status"] == "completed"
    with pytest.raises(rungate.APIError) as raised:
        rg.chat.completions.create(model=OPENAI_MODEL, messages=user("too late"), run_id=run.id)
    assert raised.value.status_code == 409
    assert raised.value.body["error"]["code"] == "run_closed"


def test_force_stopped_run_refuses_the_next_call(
    oai: openai.OpenAI, rg: rungate.Rungate, admin: rungate.Admin
) -> None:
    run_id = new_run_id()
    call(oai, "before stop", **{"x-rungate-run-id": run_id})

    admin.runs.stop(run_id)

    assert admin.runs.get(run_id)["data"]["status"] == "stopped"
    with pytest.raises(openai.PermissionDeniedError) as raised:
        call(oai, "after stop", **{"x-rungate-run-id": run_id})
    governance_block(raised.value.response, 403, "run_force_stopped")
    with pytest.raises(rungate.RunForceStoppedError) as sdk_raised:
        rg.chat.completions.create(model=OPENAI_MODEL, messages=user("after stop"), run_id=run_id)
    assert sdk_raised.value.status_code == 403
    assert sdk_raised.value.governance_code == "run_force_stopped"
    assert sdk_raised.value.run_id == run_id


def test_run_spend_adds_up_over_streamed_and_plain_calls(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    run_id = new_run_id()
    headers = {"x-rungate-run-id": run_id}
    oai.chat.completions.create(
        model=OPENAI_MODEL, messages=user("plain"), extra_headers=headers, extra_body=scripted_usage(1000, 500)
    )
    for _ in oai.chat.completions.create(
        model=OPENAI_MODEL, messages=user("streamed"), stream=True, extra_headers=headers,
        extra_body=scripted_usage(1000, 500),
    ):
        pass

    run = eventually(lambda: admin.runs.get(run_id)["data"], lambda r: r["steps_count"] == 2)
    assert run["steps_count"] == 2
    assert float(run["total_cost_usd"]) == pytest.approx(0.0009)


def test_run_id_in_the_body_groups_like_the_header(oai: openai.OpenAI, admin: rungate.Admin) -> None:
    run_id = new_run_id()
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user("body run id"), extra_body={"rungate": {"run_id": run_id}}
    )

    assert raw.parse().choices[0].message.content == "Echo: body run id"
    assert raw.headers.get("x-rungate-run-id") == run_id
    assert admin.runs.get(run_id)["data"]["steps_count"] == 1


def test_agents_of_one_team_share_a_run(gw: str, make_agent, admin: rungate.Admin) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    lead, helper = make_agent(team=team), make_agent(team=team)
    run_id = new_run_id()
    with openai_client(gw, lead.token) as first, openai_client(gw, helper.token) as second:
        call(first, "lead", **{"x-rungate-run-id": run_id})
        joined = call(second, "helper", **{"x-rungate-run-id": run_id})

    assert joined.headers.get("x-rungate-run-id") == run_id
    assert admin.runs.get(run_id)["data"]["steps_count"] == 2


def test_another_teams_agent_cannot_take_a_run_id(gw: str, oai: openai.OpenAI, make_agent, admin: rungate.Admin) -> None:
    run_id = new_run_id()
    call(oai, "mine", **{"x-rungate-run-id": run_id})

    with openai_client(gw, make_agent().token) as stranger, pytest.raises(openai.ConflictError) as raised:
        call(stranger, "theirs", **{"x-rungate-run-id": run_id})

    error = error_of(raised.value.response)
    assert error.get("code") == "run_id_taken"
    assert "mine" not in raised.value.response.text
    assert admin.runs.get(run_id)["data"]["steps_count"] == 1


def test_anthropic_sdk_sees_a_closed_run_as_409(claude: anthropic.Anthropic, agent, gw: str) -> None:
    run_id = new_run_id()
    claude.messages.create(
        model="claude-sonnet-4-20250514", max_tokens=32, messages=user("open"), extra_headers={"x-rungate-run-id": run_id}
    )
    assert post_json(f"{gw}/v1/runs/{run_id}/complete", agent.token, {}).status_code == 200

    with pytest.raises(anthropic.ConflictError) as raised:
        claude.messages.create(
            model="claude-sonnet-4-20250514", max_tokens=32, messages=user("closed"),
            extra_headers={"x-rungate-run-id": run_id},
        )
    assert error_of(raised.value.response).get("code") == "run_closed"
