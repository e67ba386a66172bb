"""`shared_timeout` behaves as `asyncio.timeout`, with one timer for many scopes."""

import asyncio

import pytest

from nps_ingest.timeouts import shared_timeout


async def _sleeps(seconds: float, limit: float) -> str:
    async with shared_timeout(limit):
        await asyncio.sleep(seconds)
    return "done"


def test_a_block_that_ends_in_time_is_left_alone() -> None:
    assert asyncio.run(_sleeps(0.01, 5.0)) == "done"


def test_a_block_that_runs_too_long_raises_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(_sleeps(10.0, 0.1))


def test_only_the_overdue_scopes_of_one_length_expire() -> None:
    async def main() -> list[str]:
        slow = asyncio.create_task(_sleeps(10.0, 0.2))
        await asyncio.sleep(0.1)
        quick = [asyncio.create_task(_sleeps(0.05, 0.2)) for _ in range(50)]
        outcomes = await asyncio.gather(slow, *quick, return_exceptions=True)
        return [type(o).__name__ if isinstance(o, BaseException) else o for o in outcomes]

    outcomes = asyncio.run(main())
    assert outcomes == ["TimeoutError"] + ["done"] * 50


def test_someone_elses_cancellation_stays_a_cancellation() -> None:
    async def main() -> None:
        task = asyncio.create_task(_sleeps(10.0, 5.0))
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())


def test_the_timer_follows_a_new_event_loop() -> None:
    # The shared state for a length outlives one loop (tests run many): a timeout must still
    # fire on the next loop, and an abandoned scope of the old one must not block it.
    async def abandoned() -> None:
        left = asyncio.create_task(_sleeps(10.0, 0.3))
        await asyncio.sleep(0)
        assert not left.done()  # asyncio.run cancels it on the way out

    asyncio.run(abandoned())
    with pytest.raises(TimeoutError):
        asyncio.run(_sleeps(10.0, 0.3))
    assert asyncio.run(_sleeps(0.01, 0.3)) == "done"
