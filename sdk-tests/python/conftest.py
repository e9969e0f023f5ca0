"""Session set-up: the mock provider, a gateway in a temp dir, and the operator's bootstrap.

The operator's part is done the way an operator would do it, through the rungate SDK's `Admin`
client: one provider key per provider (pointing at the mock), one policy, and a fresh agent per
test so no test depends on another's runs. A failing test shows what the gateway logged meanwhile.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import anthropic
import openai
import pytest
import rungate

from clients import ALLOWED_MODELS, TIMEOUT_S, anthropic_client, openai_client
from processes import Gateway, MockUpstream, binary, tail

# The clients must never reach loopback through a proxy configured in the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


_log_offset = pytest.StashKey[int]()
_gateway: Gateway | None = None


@dataclass(frozen=True)
class Stack:
    gateway_url: str
    mock_url: str
    password: str


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    token: str
    created: dict[str, Any]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    global _gateway
    workdir = tmp_path_factory.mktemp("rungate")
    mock = MockUpstream(binary("MOCK_BIN", "mock-upstream"), workdir)
    password = secrets.token_urlsafe(24)
    try:
        _gateway = Gateway(binary("RUNGATE_BIN", "rungate"), workdir, password)
    except Exception:
        mock.close()
        raise
    try:
        yield Stack(gateway_url=_gateway.base_url, mock_url=mock.base_url, password=password)
    finally:
        _gateway.close()
        mock.close()


@pytest.fixture(scope="module")
def spawn_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MockUpstream]]:
    """Starts extra mock providers with their own options (`--script`, `--require-key`) for one
    module, e.g. a primary that always fails; all are stopped when the module is done."""
    started: list[MockUpstream] = []

    def spawn(*args: str, name: str) -> MockUpstream:
        mock = MockUpstream(binary("MOCK_BIN", "mock-upstream"), tmp_path_factory.mktemp(name), *args, name=name)
        started.append(mock)
        return mock

    yield spawn
    for mock in started:
        mock.close()


@pytest.fixture(scope="session")
def gw(stack: Stack) -> str:
    """The gateway's base URL (no /v1)."""
    return stack.gateway_url


@pytest.fixture(scope="session")
def admin(stack: Stack) -> Iterator[rungate.Admin]:
    """Admin client authenticated with the dashboard password (every scope)."""
    client = rungate.Admin(token=stack.password, base_url=stack.gateway_url, timeout=TIMEOUT_S)
    yield client
    client.close()


@pytest.fixture(scope="session")
def provider_keys(admin: rungate.Admin, stack: Stack) -> dict[str, dict[str, Any]]:
    """provider → the `data` of its creation response."""
    created = {}
    for provider in ("openai", "anthropic"):
        answer = admin.provider_keys.create(
            provider=provider, name=f"mock-{provider}", api_key="sk-mock", base_url=stack.mock_url
        )
        created[provider] = answer["data"]
    return created


@pytest.fixture(scope="session")
def policy(admin: rungate.Admin) -> dict[str, Any]:
    return admin.policies.create(name="sdk-tests", allowed_models=ALLOWED_MODELS)["data"]


@pytest.fixture
def make_agent(
    admin: rungate.Admin,
    policy: dict[str, Any],
    provider_keys: dict[str, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> Callable[..., Agent]:
    """Creates agents with unique names on the sdk-tests policy and both mock provider keys."""

    def create(**fields: Any) -> Agent:
        name = f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
        fields.setdefault("policy_id", policy["id"])
        fields.setdefault("provider_keys", {p: data["id"] for p, data in provider_keys.items()})
        data = admin.agents.create(name=name, **fields)["data"]
        return Agent(id=data["id"], name=data["name"], token=data["api_key"], created=data)

    return create


@pytest.fixture
def agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent()


@pytest.fixture
def oai(gw: str, agent: Agent) -> Iterator[openai.OpenAI]:
    client = openai_client(gw, agent.token)
    yield client
    client.close()


@pytest.fixture
def claude(gw: str, agent: Agent) -> Iterator[anthropic.Anthropic]:
    client = anthropic_client(gw, agent.token)
    yield client
    client.close()


@pytest.fixture
def rg(gw: str, agent: Agent) -> Iterator[rungate.Rungate]:
    client = rungate.Rungate(api_key=agent.token, base_url=gw, timeout=TIMEOUT_S)
    yield client
    client.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_log_offset] = _gateway.log_size() if _gateway else 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed and _gateway is not None:
        logged = tail(_gateway.log_path, item.stash.get(_log_offset, 0))
        if logged.strip():
            report.sections.append(("gateway log during this test", logged))
    return report
