"""How the suite builds clients: exactly as an agent would, pointed at the gateway.

SDK retries are off (`max_retries=0`): a refusal must surface as the first answer, and retrying a
409 or a 5xx would only make a failing run slower.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai

TIMEOUT_S = 20.0
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
# The sdk-tests policy every test agent starts on.
ALLOWED_MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4*", "claude-3-5-haiku*"]


def openai_client(gw: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw}/v1", api_key=token, max_retries=0, timeout=TIMEOUT_S)


def async_openai_client(gw: str, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw}/v1", api_key=token, max_retries=0, timeout=TIMEOUT_S)


def anthropic_client(gw: str, token: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw, api_key=token, max_retries=0, timeout=TIMEOUT_S)


def async_anthropic_client(gw: str, token: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw, api_key=token, max_retries=0, timeout=TIMEOUT_S)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def scripted_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Body extra that makes the mock report exactly this usage (and proves unknown fields pass)."""
    return {"mock": {"usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}}


def scripted_tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"mock": {"tool_call": {"name": name, "arguments": arguments}}}


def post_json(url: str, token: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(url, json=body, headers={**bearer(token), **headers}, timeout=TIMEOUT_S)


def get_json(url: str, token: str) -> httpx.Response:
    return httpx.get(url, headers=bearer(token), timeout=TIMEOUT_S)
