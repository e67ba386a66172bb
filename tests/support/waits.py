"""Observe the waits a provider client makes between its attempts, instead of sleeping them."""

from typing import Any


def recorded_waits(channel: Any) -> list[float]:
    """The seconds `channel`'s provider client waits before each retry, recorded (and not
    slept) from now on."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    channel._client._sleep = record
    return waits
