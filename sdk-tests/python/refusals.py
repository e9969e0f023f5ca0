"""What a refused call must look like to the agent (SPEC §5), checked on the raw HTTP answer."""

from __future__ import annotations

from typing import Any

import httpx


def error_of(response: httpx.Response | Any) -> dict[str, Any]:
    """The `error` object of an answer in either dialect (OpenAI `{"error"}`, Anthropic `{"type":"error","error"}`)."""
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"no error object in {body!r}"
    return body["error"]


def governance_block(response: httpx.Response | Any, status: int, code: str) -> dict[str, Any]:
    """Checks a governance refusal carries both the website and the SDK shape plus the header."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    error = error_of(response)
    assert error.get("code") == code, error
    assert error.get("type") == "governance_block", error
    assert isinstance(error.get("message"), str) and error["message"], error
    assert isinstance(error.get("context"), dict), f"website shape: no context in {error}"
    assert isinstance(error.get("details"), dict), f"SDK shape: no details in {error}"
    assert response.headers.get("x-rungate-governance") == "blocked", dict(response.headers)
    return error
