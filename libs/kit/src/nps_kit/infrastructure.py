"""Wiring shared by every service's composition root: the database engine, the publisher,
the outbox relay and the consumers, started and stopped with the HTTP app."""

from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from nps_events import Event
from nps_kit.access import Access
from nps_kit.auth import AuthSettings
from nps_kit.db import SessionFactory, create_engine, ping, session_factory
from nps_kit.http import ReadinessCheck
from nps_kit.logging import get_logger
from nps_kit.messaging import BatchHandler, ConsumerRunner
from nps_kit.outbox import OutboxRelay, use_headers
from nps_kit.publishing import Publisher
from nps_kit.service import BackgroundLoops
from nps_kit.settings import DatabaseSettings, KafkaSettings

log = get_logger(__name__)


@dataclass
class Infrastructure:
    """What one service process connects to. Built by `bootstrap.py`, used by tests too."""

    name: str
    kafka: KafkaSettings
    engine: AsyncEngine
    sessions: SessionFactory
    publisher: Publisher
    runtime: BackgroundLoops = field(default_factory=BackgroundLoops)
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    loops: list[tuple[str, Callable[[], Coroutine[Any, Any, None]], Callable[[], None]]] = field(
        default_factory=list
    )
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    access: Access | None = None
    #: `DatabaseSettings.outbox_headers`, applied to the outbox table `with_outbox` is given.
    outbox_headers: Literal["json", "compact"] = "json"

    @classmethod
    def connect(
        cls, name: str, *, kafka: KafkaSettings, database: DatabaseSettings
    ) -> "Infrastructure":
        engine = create_engine(database, application_name=f"npsloop-{name}")
        return cls(
            name=name,
            kafka=kafka,
            engine=engine,
            sessions=session_factory(engine),
            publisher=Publisher(kafka, client_id=name),
            outbox_headers=database.outbox_headers,
        )

    def with_outbox(self, table: Table) -> OutboxRelay:
        use_headers(table, self.outbox_headers)
        self.relay = OutboxRelay(
            sessions=self.sessions, table=table, send_many=self.publisher.send_many
        )
        return self.relay

    def with_access(self, settings: AuthSettings) -> Access:
        """The API's bearer-token gate: the identity provider's keys are fetched at start-up
        (a provider that does not answer is retried, never fatal), its client closed at stop."""
        self.access = Access.connect(settings)
        self.on_stop(self.access.close)
        return self.access

    def add_consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        ignores: Collection[type[Event]] = (),
    ) -> ConsumerRunner:
        """A consumer of `topics`; `ignores`: the event types there that `handler` does not
        act on, skipped undecoded (`ConsumerRunner`)."""
        runner = ConsumerRunner(
            settings=self.kafka,
            group_id=group_id,
            topics=topics,
            handler=handler,
            publisher=self.publisher,
            ignores=ignores,
        )
        self.consumers.append(runner)
        return runner

    def add_loop(
        self, name: str, run: Callable[[], Coroutine[Any, Any, None]], *, stop: Callable[[], None]
    ) -> None:
        """Another background loop of the service (a timer sweeper…), started after the
        consumers and stopped with them; if it crashes, the process exits non-zero."""
        self.loops.append((name, run, stop))

    def on_stop(self, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Release something (provider connections…) once the loops have stopped."""
        self.closers.append(close)

    def readiness(self) -> dict[str, ReadinessCheck]:
        """What the service must reach before it takes traffic, from what it was wired with:
        its database; its consumers (joined, and not waiting for the infrastructure), when it
        has any; the identity provider's keys, when its API checks tokens (`with_access`).
        Call it once the consumers and the access are wired."""
        checks: dict[str, ReadinessCheck] = {"database": self.check_database}
        if self.consumers:
            checks["consumer"] = self.check_consumers
        if self.access is not None:
            checks["identity_provider"] = self.access.check
        return checks

    async def check_database(self) -> None:
        await ping(self.engine)

    async def check_consumers(self) -> None:
        joining = [c for c in self.consumers if not c.ready.is_set()]
        if joining:
            raise RuntimeError(f"{len(joining)} consumer(s) have not joined their group yet")
        paused = [f"{c.group_id}: {why}" for c in self.consumers if (why := c.waiting())]
        if paused:
            raise RuntimeError("waiting for the infrastructure: " + " | ".join(paused))

    async def start(self) -> None:
        if self.access is not None:
            await self.access.start()
        await self.publisher.start()
        if self.relay is not None:
            self.runtime.spawn("outbox-relay", self.relay.run(), stop=self.relay.stop)
        for index, consumer in enumerate(self.consumers):
            self.runtime.spawn(f"consumer-{index}", consumer.run(), stop=consumer.stop)
        for name, run, stop in self.loops:
            self.runtime.spawn(name, run(), stop=stop)

    async def stop(self) -> None:
        await self.runtime.stop()
        for close in self.closers:
            await close()
        await self.publisher.stop()
        await self.engine.dispose()

    def lifespan(self) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            await self.start()
            log.info("service.started", service=self.name)
            try:
                yield
            finally:
                log.info("service.stopping", service=self.name)
                await self.stop()

        return lifespan
