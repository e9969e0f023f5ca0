"""The rungate SDK's Admin client against webhooks, analytics and retention: the shapes it sends
are accepted and what comes back carries the promised fields."""

from __future__ import annotations

import uuid

import openai
import pytest
import rungate

from clients import OPENAI_MODEL, scripted_usage, user


def test_webhooks_are_managed_through_the_admin_client(admin: rungate.Admin) -> None:
    created = admin.webhooks.create(
        name=f"hook-{uuid.uuid4().hex[:6]}", url="http://127.0.0.1:9/hook", events=["run.started", "approval.pending"]
    )["data"]
    assert created["secret"].startswith("whsec_")
    hook_id = created["id"]
    assert "secret" not in admin.webhooks.get(hook_id)["data"]
    assert any(h["id"] == hook_id for h in admin.webhooks.list(event="approval.pending")["data"])
    assert admin.webhooks.disable(hook_id)["data"]["status"] == "disabled"
    assert admin.webhooks.enable(hook_id)["data"]["status"] == "active"
    assert admin.webhooks.update(hook_id, events=["*"])["data"]["events"] == ["*"]
    assert admin.webhooks.test(hook_id)["data"]["queued"] == 1
    deliveries = admin.webhooks.deliveries(hook_id, event_type="webhook.test")
    assert deliveries["total"] == 1 and deliveries["data"][0]["event"] == "webhook.test"
    admin.webhooks.delete(hook_id)
    with pytest.raises(rungate.NotFoundError):
        admin.webhooks.get(hook_id)


def test_analytics_and_cleanup_preview_through_the_admin_client(oai: openai.OpenAI, admin: rungate.Admin, agent) -> None:
    oai.chat.completions.create(model=OPENAI_MODEL, messages=user("count me"), extra_body=scripted_usage(1000, 500))
    costs = admin.analytics.costs(group_by="agent", agent_id=agent.id)["data"]
    assert costs[0]["group"] == agent.id and costs[0]["cost_usd"] == pytest.approx(0.00045)
    latency = admin.analytics.latency(group_by="model", agent_id=agent.id)["data"]
    assert latency[0]["group"] == OPENAI_MODEL and latency[0]["count"] == 1
    assert admin.analytics.errors(group_by="agent", agent_id=agent.id)["data"][0]["errors"] == 0
    assert admin.analytics.throughput(group_by="time", granularity="day", agent_id=agent.id)["data"][0]["steps"] == 1
    assert admin.analytics.top(metric="cost", entity="model")["data"]
    preview = admin.analytics.cleanup_preview(days=30)["data"]
    assert preview["days"] == 30 and "runs" in preview["would_delete"]
