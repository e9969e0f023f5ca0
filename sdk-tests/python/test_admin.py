"""The operator's API through the rungate SDK's `Admin` client: secrets shown once, scopes enforced,
agent tokens kept out, and the list / item / 404 shapes the SDK relies on."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
import rungate

from clients import OPENAI_MODEL, TIMEOUT_S, bearer, user


def test_provider_keys_never_return_the_secret(admin: rungate.Admin, provider_keys, stack) -> None:
    for provider, created in provider_keys.items():
        assert created["provider"] == provider
        assert created["name"] == f"mock-{provider}"
        assert created["base_url"] == stack.mock_url
        assert created["status"] == "active"
        assert created["key_suffix"].endswith("mock")
        assert "api_key" not in created

    listed = admin.provider_keys.list()
    assert {key["id"] for key in listed["data"]} >= {created["id"] for created in provider_keys.values()}
    assert "sk-mock" not in json.dumps(listed)
    assert "sk-mock" not in json.dumps(admin.provider_keys.get(provider_keys["openai"]["id"]))


def test_policy_starts_at_version_one_with_its_rules(admin: rungate.Admin, policy) -> None:
    assert policy["name"] == "sdk-tests"
    assert policy["version"] == 1
    fetched = admin.policies.get(policy["id"])["data"]
    assert fetched["id"] == policy["id"]
    assert fetched["allowed_models"] == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4*", "claude-3-5-haiku*"]


def test_agent_token_is_shown_once(admin: rungate.Admin, agent) -> None:
    assert agent.token.startswith("rg_agt_")
    assert len(agent.token) >= len("rg_agt_") + 32
    assert agent.created["status"] == "active"

    fetched = admin.agents.get(agent.id)["data"]
    assert fetched["id"] == agent.id
    assert fetched["name"] == agent.name
    assert agent.token not in json.dumps(fetched)
    assert agent.token not in json.dumps(admin.agents.list())


def test_agent_token_never_works_on_the_admin_api(gw: str, agent) -> None:
    answer = httpx.get(f"{gw}/api/agents", headers=bearer(agent.token), timeout=TIMEOUT_S)
    assert answer.status_code == 401, answer.text

    with rungate.Admin(token=agent.token, base_url=gw, timeout=TIMEOUT_S) as as_agent:
        with pytest.raises(rungate.AuthenticationError):
            as_agent.runs.list()


def test_admin_api_without_credentials_is_401(gw: str) -> None:
    answer = httpx.get(f"{gw}/api/runs", timeout=TIMEOUT_S)

    assert answer.status_code == 401, answer.text


def test_read_scoped_token_can_read_but_not_write(gw: str, admin: rungate.Admin, policy) -> None:
    created = admin.tokens.create(name=f"reader-{uuid.uuid4().hex[:8]}", scopes=["read"])["data"]
    assert created["token"].startswith("rg_adm_")

    with rungate.Admin(token=created["token"], base_url=gw, timeout=TIMEOUT_S) as reader:
        runs = reader.runs.list()
        assert isinstance(runs["data"], list)
        assert isinstance(runs["total"], int)
        reader.agents.list()
        with pytest.raises(rungate.PermissionDeniedError) as raised:
            reader.agents.create(name=f"forbidden-{uuid.uuid4().hex[:8]}", policy_id=policy["id"])

    assert raised.value.status_code == 403
    assert raised.value.message == "Insufficient scope. Required: write"
    assert raised.value.body["error"]["type"] == "forbidden"


def test_lists_are_newest_first(admin: rungate.Admin, make_agent) -> None:
    older = make_agent()
    newer = make_agent()

    page = admin.agents.list()
    ids = [item["id"] for item in page["data"]]
    assert page["total"] >= 2
    assert ids.index(newer.id) < ids.index(older.id)


def test_lists_page_with_limit_and_offset(admin: rungate.Admin, oai: openai.OpenAI, agent) -> None:
    run_ids = {f"sdk-page-{uuid.uuid4()}" for _ in range(2)}
    for run_id in run_ids:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=user("page"), extra_headers={"x-rungate-run-id": run_id})

    first = admin.runs.list(agent_id=agent.id, limit=1)
    second = admin.runs.list(agent_id=agent.id, limit=1, offset=1)

    assert first["total"] == second["total"] == 2
    assert len(first["data"]) == len(second["data"]) == 1
    assert {first["data"][0]["id"], second["data"][0]["id"]} == run_ids


def test_unknown_ids_are_404_not_found(admin: rungate.Admin) -> None:
    with pytest.raises(rungate.NotFoundError) as raised:
        admin.runs.get(f"no-such-run-{uuid.uuid4()}")

    assert raised.value.status_code == 404
    assert raised.value.body["error"]["type"] == "not_found"
    with pytest.raises(rungate.NotFoundError):
        admin.agents.get(f"no-such-agent-{uuid.uuid4()}")
