"""Approval gates as agents and approvers feel them: the rungate SDK raises `ApprovalRequiredError`,
the official openai SDK sees the 202 through its raw response, an approver decides with
`Admin.approvals`, and the identical retry goes through once."""

from __future__ import annotations

import json
import uuid

import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, OPENAI_MODEL, TIMEOUT_S, openai_client, user

TOOLS = [{"type": "function", "function": {"name": "execute_code", "parameters": {"type": "object"}}}]


@pytest.fixture
def gated_agent(admin: rungate.Admin, make_agent):
    policy = admin.policies.create(
        name=f"gated-{uuid.uuid4().hex[:8]}", allowed_models=ALLOWED_MODELS, require_approval=["execute_code"]
    )["data"]
    return make_agent(policy_id=policy["id"])


def test_rungate_sdk_raises_approval_required_then_the_approved_retry_succeeds(
    gw: str, admin: rungate.Admin, gated_agent
) -> None:
    run_id = f"sdk-gate-{uuid.uuid4()}"
    with rungate.Rungate(api_key=gated_agent.token, base_url=gw, timeout=TIMEOUT_S) as rg:
        with pytest.raises(rungate.ApprovalRequiredError) as raised:
            rg.chat.completions.create(model=OPENAI_MODEL, messages=user("run it"), tools=TOOLS, run_id=run_id)
        pending = raised.value.approval_requests
        assert raised.value.status_code == 202
        assert raised.value.run_id == run_id
        assert [r["tool"] for r in pending] == ["execute_code"]

        listed = admin.approvals.list(run_id=run_id, status="pending")
        assert [g["id"] for g in listed["data"]] == [pending[0]["id"]]
        approved = admin.approvals.approve(pending[0]["id"])["data"]
        assert approved["status"] == "approved"

        completion = rg.chat.completions.create(model=OPENAI_MODEL, messages=user("run it"), tools=TOOLS, run_id=run_id)
        assert completion.choices[0]["message"]["content"] == "Echo: run it"
        with pytest.raises(rungate.ApprovalRequiredError):
            rg.chat.completions.create(model=OPENAI_MODEL, messages=user("run it"), tools=TOOLS, run_id=run_id)


def test_rejection_reaches_the_rungate_sdk_as_a_403_with_the_reason(gw: str, admin: rungate.Admin, gated_agent) -> None:
    run_id = f"sdk-gate-{uuid.uuid4()}"
    with rungate.Rungate(api_key=gated_agent.token, base_url=gw, timeout=TIMEOUT_S) as rg:
        with pytest.raises(rungate.ApprovalRequiredError) as raised:
            rg.chat.completions.create(model=OPENAI_MODEL, messages=user("drop db"), tools=TOOLS, run_id=run_id)
        admin.approvals.reject(raised.value.approval_requests[0]["id"], reason="not in prod")
        with pytest.raises(rungate.GovernanceError) as refused:
            rg.chat.completions.create(model=OPENAI_MODEL, messages=user("drop db"), tools=TOOLS, run_id=run_id)
    assert refused.value.status_code == 403
    assert refused.value.governance_code == "approval_rejected"
    assert "not in prod" in refused.value.message


def test_openai_sdk_sees_the_202_and_its_retry_succeeds_after_approval(
    gw: str, admin: rungate.Admin, gated_agent
) -> None:
    headers = {"x-rungate-run-id": f"sdk-gate-{uuid.uuid4()}"}
    with openai_client(gw, gated_agent.token) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=user("deploy"), tools=TOOLS, extra_headers=headers
        )
        assert raw.status_code == 202
        assert raw.headers.get("retry-after") == "5"
        assert raw.headers.get("x-rungate-governance") == "awaiting_approval"
        body = json.loads(raw.text)
        assert body["status"] == "awaiting_approval"
        gate = body["approval_requests"][0]
        assert body["context"]["gate_id"] == gate["id"]

        admin.approvals.approve(gate["id"])
        completion = client.chat.completions.create(
            model=OPENAI_MODEL, messages=user("deploy"), tools=TOOLS, extra_headers=headers
        )
    assert completion.choices[0].message.content == "Echo: deploy"
    assert admin.approvals.get(gate["id"])["data"]["consumed_at"] is not None
