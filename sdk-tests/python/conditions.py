"""Waiting on a condition instead of sleeping: a streamed call's spend is settled as the stream ends,
and an admin read right after the last chunk may race that write by a few milliseconds."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def eventually(read: Callable[[], T], holds: Callable[[T], bool], timeout_s: float = 3.0) -> T:
    """The first value of `read()` for which `holds` is true; the last one read after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if holds(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
