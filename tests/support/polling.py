"""Waiting for eventually-true conditions: poll with a deadline, never a bare sleep."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool],
    timeout: float = 30.0,
    what: str,
    diagnose: Callable[[], str] | None = None,
) -> T:
    """`probe()` until `until` holds of its value; on timeout, an AssertionError with the
    last value and, if given, what `diagnose()` says (say, the services' own account)."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last value: {value!r}"
                + (f"\n{diagnose()}" if diagnose else "")
            )
        await asyncio.sleep(0.1)
        value = await probe()
    return value


def eventually_sync(
    probe: Callable[[], T], *, until: Callable[[T], bool], timeout: float = 30.0, what: str
) -> T:
    deadline = time.monotonic() + timeout
    value = probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last value: {value!r}"
            )
        time.sleep(0.1)
        value = probe()
    return value
