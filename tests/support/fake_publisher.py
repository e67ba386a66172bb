"""An in-memory fake of ingest's `EventPublisher` port, for unit tests of ingest's routes without
a broker: what it would have published, in order; or a broker that refuses, or answers late."""

import asyncio
from datetime import datetime

from nps_events import Event


class FakePublisher:
    def __init__(self, failure: Exception | None = None, delay: float = 0.0) -> None:
        """`failure`: raised by every publish (a broker that does not acknowledge); `delay`:
        seconds each publish takes before it answers (a broker slower than ingest waits)."""
        self.published: list[Event] = []
        self.failure = failure
        self.delay = delay

    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        await asyncio.sleep(self.delay)
        if self.failure:
            raise self.failure
        self.published.append(event)
