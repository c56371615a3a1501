"""Waiting in tests on a condition, never on a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any], timeout: float = 30.0, *, interval: float = 0.05, message: str = ""
) -> Any:
    """Poll ``check`` (sync, or returning an awaitable) until it returns a truthy value, and return it;
    fail with the last value seen after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {message or check}; last={last!r}")
        await asyncio.sleep(interval)


def until(check: Callable[[], Any], timeout: float = 30.0, *, interval: float = 0.2) -> Any:
    """The synchronous sibling of :func:`eventually`, for tests that drive subprocesses: poll ``check``
    until it returns a truthy value and return it; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {check}; last={last!r}")
        time.sleep(interval)
