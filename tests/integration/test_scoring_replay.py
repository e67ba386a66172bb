"""Scoring's figures are a function of the events: replaying every event into an empty
database, from the handler or from the topic, reproduces them; re-delivering events changes
nothing; rebuilding from the stored responses gives them back."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import Customer, ResponseReceived, dlq, encode
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_kit.messaging import ConsumerRunner, Outgoing, Publisher, ensure_topics
from nps_kit.migrations import upgrade
from nps_kit.outbox import OutboxRelay
from nps_kit.settings import KafkaSettings
from nps_scoring.adapters import tables
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.entrypoints.consumer import responses_handler
from nps_scoring.handlers import rebuild_figures, score_responses
from tests.support.infra import Infra, new_database
from tests.support.polling import eventually

THEMES = KeywordThemeClassifier(load_taxonomy())
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
COMMENTS = [
    None,
    "Delivery was late",
    "Way too expensive",
    "The app is not slow",
    "Support never answered and the app crashes",
    "La livraison est très lente",
    "El soporte no respondió",
    "Great!",
    "Setup was easy",
]


def event_stream(seed: int = 6, customers: int = 40) -> list[ResponseReceived]:
    """A year of responses: several per customer, some updated later (a comment added, a
    score changed), in the order a topic would carry them (per customer, by time)."""
    rng = random.Random(seed)
    events: list[tuple[datetime, ResponseReceived]] = []
    for c in range(customers):
        customer = Customer(
            id=f"cust-{c}",
            attributes={"plan": rng.choice(["free", "pro"]), "region": rng.choice(["eu", "us"])},
        )
        for r in range(rng.randint(1, 6)):
            answered = T0 + timedelta(days=rng.randint(0, 364), hours=rng.randint(0, 23))
            provider_id = f"cust-{c}-r{r}"
            source = rng.choice(["web", "app"])
            first = ResponseReceived(
                response_id=ResponseReceived.derive_response_id(source, provider_id),
                source=source,
                provider_response_id=provider_id,
                survey_id=rng.choice(["relationship", "onboarding"]),
                customer=customer,
                score=rng.randint(0, 10),
                comment=rng.choice(COMMENTS),
                responded_at=answered,
                received_at=answered,
            )
            events.append((answered, first))
            if rng.random() < 0.3:
                update = first.model_copy(
                    update={"score": rng.randint(0, 10), "comment": rng.choice(COMMENTS[1:])}
                )
                events.append((answered + timedelta(minutes=5), update))
    events.sort(key=lambda e: (e[1].customer.id, e[0]))
    return [e for _, e in events]


async def process(sessions: SessionFactory, events: list[ResponseReceived], size: int) -> None:
    for i in range(0, len(events), size):
        async with unit_of_work(sessions) as session:
            await score_responses(
                ScoringRepository(session), events[i : i + size], now=T0, classifier=THEMES
            )


async def snapshot(sessions: SessionFactory) -> dict[str, Any]:
    async with sessions() as session:
        f = tables.figures.c
        figures = (await session.execute(select(tables.figures).order_by(*f))).all()
        r = tables.responses.c
        responses = (
            await session.execute(
                select(
                    r.response_id,
                    r.score,
                    r.segment,
                    r.comment,
                    r.themes,
                    r.previous_score,
                    r.transition,
                    r.revision,
                ).order_by(r.response_id)
            )
        ).all()
    return {"figures": [tuple(row) for row in figures], "responses": [tuple(r) for r in responses]}


@pytest.fixture
async def fresh_database(infra: Infra) -> AsyncIterator[Callable[[], Any]]:
    """Makes empty databases with scoring's schema; disposes of their engines afterwards."""
    engines = []

    async def make() -> SessionFactory:
        url = await new_database(infra.database_url, "replay")
        await asyncio.to_thread(upgrade, "nps_scoring", url)
        engine = create_async_engine(url)
        engines.append(engine)
        return session_factory(engine)

    yield make
    for engine in engines:
        await engine.dispose()


async def test_replay_into_an_empty_database_reproduces_the_figures_and_redelivery_changes_nothing(
    fresh_database: Callable[[], Any],
) -> None:
    events = event_stream()
    first: SessionFactory = await fresh_database()
    # Batches of 5 (an update often lands in a later batch than its response), a random
    # tenth of the events delivered twice.
    rng = random.Random(1)
    delivered = [e for e in events for _ in range(2 if rng.random() < 0.1 else 1)]
    await process(first, delivered, size=5)
    original = await snapshot(first)
    assert len(original["figures"]) > 100
    assert any(row[-1] > 1 for row in original["responses"]), "the stream has updates"

    await process(first, events, size=100)  # everything again
    assert await snapshot(first) == original

    replayed: SessionFactory = await fresh_database()
    await process(replayed, events, size=len(events))  # all at once: other batch boundaries
    assert await snapshot(replayed) == original

    async with unit_of_work(first) as session:
        await rebuild_figures(ScoringRepository(session), timezone=UTC, classifier=THEMES)
    assert await snapshot(first) == original


async def test_replaying_the_topic_from_the_start_reproduces_the_figures(
    infra: Infra, fresh_database: Callable[[], Any]
) -> None:
    events = event_stream(seed=7, customers=25)
    direct: SessionFactory = await fresh_database()
    await process(direct, events, size=50)
    expected = (await snapshot(direct))["figures"]

    kafka = KafkaSettings(bootstrap_servers=infra.bootstrap_servers)
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic, dlq(topic)], partitions=3)
    publisher = Publisher(kafka, client_id="test-replay")
    await publisher.start()
    try:
        messages = []
        for event in events:
            m = encode(event, source="/test", time=T0)
            messages.append(Outgoing(topic, m.key, m.value, m.headers))
        await publisher.send_many(messages)

        async def consume_all(sessions: SessionFactory, group: str) -> None:
            relay = OutboxRelay(
                sessions=sessions, table=tables.outbox, send_many=publisher.send_many
            )
            runner = ConsumerRunner(
                settings=kafka,
                group_id=group,
                topics=[topic],
                handler=responses_handler(
                    sessions=sessions,
                    relay=relay,
                    clock=FrozenClock(T0),
                    classifier=THEMES,
                    timezone=UTC,
                ),
                publisher=publisher,
            )
            task = asyncio.create_task(runner.run())

            async def inbox_rows() -> int:
                async with sessions() as session:
                    return int(
                        await session.scalar(select(func.count()).select_from(tables.inbox)) or 0
                    )

            distinct = len({e.event_id() for e in events})
            try:
                await eventually(
                    inbox_rows, until=lambda n: n >= distinct, timeout=90, what="every event"
                )
            finally:
                runner.stop()
                await asyncio.wait_for(task, timeout=30)

        replayed: SessionFactory = await fresh_database()
        await consume_all(replayed, f"replay-{uuid.uuid4().hex[:6]}")
        assert (await snapshot(replayed))["figures"] == expected
        # A second consumer group re-delivers the whole topic to the same database.
        await consume_all(replayed, f"again-{uuid.uuid4().hex[:6]}")
        assert (await snapshot(replayed))["figures"] == expected
    finally:
        await publisher.stop()


async def test_upgrading_counts_the_responses_scored_before_figures_existed(
    infra: Infra, fresh_database: Callable[[], Any]
) -> None:
    events = event_stream(seed=8, customers=15)
    reference: SessionFactory = await fresh_database()
    await process(reference, events, size=20)
    expected = (await snapshot(reference))["figures"]

    # The same responses, in a database at revision 0003 (no figures table yet).
    url = await new_database(infra.database_url, "upgrade")
    await asyncio.to_thread(upgrade, "nps_scoring", url, "0003")
    engine = create_async_engine(url)
    try:
        columns = [c for c in tables.responses.c if c.name != "revision"]
        async with reference() as session:
            rows = (await session.execute(select(*columns))).mappings().all()
        async with engine.begin() as conn:
            await conn.execute(tables.responses.insert(), [dict(r) for r in rows])
        await asyncio.to_thread(upgrade, "nps_scoring", url)
        assert (await snapshot(session_factory(engine)))["figures"] == expected
    finally:
        await engine.dispose()


async def test_counting_the_responses_gives_the_kept_figures(
    fresh_database: Callable[[], Any],
) -> None:
    sessions: SessionFactory = await fresh_database()
    await process(sessions, event_stream(seed=9, customers=30), size=25)
    async with sessions() as session:
        repo = ScoringRepository(session)
        for grain in ("day", "week", "month"):
            for dimension in ("source", "survey", "theme", "attribute:plan", "attribute:region"):
                kept = await repo.figures(
                    grain=grain, dimension=dimension, value=None, start=None, end=None,
                    by_period=True,
                )  # fmt: skip
                counted = await repo.response_figures(
                    grain=grain, timezone="UTC", filters=[], group_by=dimension, start=None,
                    end=None, by_period=True,
                )  # fmt: skip
                assert counted == kept, (grain, dimension)
                [(_, value, _)] = kept[:1]
                filtered = await repo.response_figures(
                    grain=grain, timezone="UTC", filters=[(dimension, value)], group_by=None,
                    start=None, end=None, by_period=True,
                )  # fmt: skip
                one = await repo.figures(
                    grain=grain, dimension=dimension, value=value, start=None, end=None,
                    by_period=True,
                )  # fmt: skip
                assert [(p, c) for p, _, c in filtered] == [(p, c) for p, _, c in one]


async def test_counting_the_responses_of_a_range_in_a_time_zone_gives_the_kept_figures(
    fresh_database: Callable[[], Any],
) -> None:
    sessions: SessionFactory = await fresh_database()
    paris = ZoneInfo("Europe/Paris")
    events = event_stream(seed=10, customers=30)
    for i in range(0, len(events), 25):
        async with unit_of_work(sessions) as session:
            await score_responses(
                ScoringRepository(session),
                events[i : i + 25],
                now=T0,
                classifier=THEMES,
                timezone=paris,
            )
    start, end = date(2026, 3, 1), date(2026, 8, 31)
    async with sessions() as session:
        repo = ScoringRepository(session)
        kept = await repo.figures(
            grain="day", dimension="theme", value=None, start=start, end=end, by_period=True
        )
        counted = await repo.response_figures(
            grain="day", timezone="Europe/Paris", filters=[], group_by="theme", start=start,
            end=end, by_period=True,
        )  # fmt: skip
    assert kept
    assert counted == kept
