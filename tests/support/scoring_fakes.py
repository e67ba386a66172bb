"""An in-memory fake of scoring's repository ports (`nps_scoring.handlers.ports`), for unit
tests of its use cases without PostgreSQL. It keeps what the SQL keeps, as the ports'
docstrings describe it; the PostgreSQL tests (tests/integration) cover the SQL itself."""

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from nps_events import Event, ResponseScored
from nps_scoring.adapters.repository import KnownResponses, StoredResponse, StoredVersion
from nps_scoring.domain.figures import BucketKey, Counted, Counts, Deltas, buckets_of
from nps_scoring.domain.transitions import PastResponse
from nps_scoring.handlers import counted_version


@dataclass
class Stored:
    scored: ResponseScored
    revision: int
    themes: tuple[str, ...] | None

    @property
    def counted(self) -> Counted:
        version = counted_version(self.scored)
        return Counted(
            version.segment,
            version.responded_at,
            version.source,
            version.survey_id,
            self.themes,
            version.attributes,
        )


@dataclass
class InMemoryScoring:
    """The `ScoredResponses`, `FigureRebuild` and `FigureReads` ports over dicts: `responses`
    by response id, `buckets` the figures, `processed` the inbox, `published` the outbox."""

    responses: dict[uuid.UUID, Stored] = field(default_factory=dict)
    buckets: dict[BucketKey, list[int]] = field(default_factory=dict)
    processed: set[tuple[str, str]] = field(default_factory=set)
    published: list[Event] = field(default_factory=list)

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        fresh = {i for i in event_ids if (consumer, i) not in self.processed}
        self.processed |= {(consumer, i) for i in fresh}
        return fresh

    async def known(self, keys: list[tuple[str, uuid.UUID, datetime]]) -> KnownResponses:
        found: dict[int, PastResponse] = {}
        for position, (customer, response_id, at) in enumerate(keys):
            earlier = [
                s.scored
                for s in self.responses.values()
                if s.scored.customer.id == customer
                and s.scored.response_id != response_id
                and (s.scored.responded_at, str(s.scored.response_id)) < (at, str(response_id))
            ]
            if earlier:
                last = max(earlier, key=lambda r: (r.responded_at, str(r.response_id)))
                found[position] = PastResponse(last.response_id, last.responded_at, last.score)
        versions = {
            rid: StoredVersion(self.responses[rid].counted, self.responses[rid].revision)
            for _, rid, _ in keys
            if rid in self.responses
        }
        return KnownResponses(found, versions)

    async def store(self, scored: list[ResponseScored], deltas: Deltas) -> None:
        await self.apply_deltas(deltas)
        for s in scored:
            known = self.responses.get(s.response_id)
            revision = 1 if known is None else known.revision + 1
            themes = None if s.themes is None else tuple(s.themes)
            self.responses[s.response_id] = Stored(s, revision, themes)

    async def apply_deltas(self, deltas: Deltas) -> None:
        for key, change in deltas.items():
            bucket = self.buckets.setdefault(key, [0, 0, 0])
            bucket[:] = [a + b for a, b in zip(bucket, change, strict=True)]
            if not any(bucket):
                del self.buckets[key]

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.published += events

    async def clear_figures(self) -> None:
        self.buckets.clear()

    async def stream_responses(self, *, chunk: int = 5000) -> AsyncIterator[list[StoredResponse]]:
        ordered = [self.responses[i] for i in sorted(self.responses)]
        for start in range(0, len(ordered), chunk):
            yield [
                StoredResponse(
                    s.scored.response_id, s.scored.comment, s.scored.customer.locale, s.counted
                )
                for s in ordered[start : start + chunk]
            ]

    async def set_themes(self, themes: dict[uuid.UUID, list[str] | None]) -> None:
        for response_id, found in themes.items():
            self.responses[response_id].themes = None if found is None else tuple(found)

    async def figures(
        self,
        *,
        grain: str,
        dimension: str,
        value: str | None,
        start: date | None,
        end: date | None,
        by_period: bool,
    ) -> list[tuple[date | None, str, Counts]]:
        sums: dict[tuple[date | None, str], list[int]] = {}
        for (g, d, v, period), counts in self.buckets.items():
            if g != grain or d != dimension or (value is not None and v != value):
                continue
            if (start is not None and period < start) or (end is not None and period > end):
                continue
            total = sums.setdefault((period if by_period else None, v), [0, 0, 0])
            total[:] = [a + b for a, b in zip(total, counts, strict=True)]
        return [(p, v, Counts(*c)) for (p, v), c in sorted(sums.items(), key=_order)]

    async def response_figures(
        self,
        *,
        grain: str,
        timezone: str,
        filters: Sequence[tuple[str, str]],
        group_by: str | None,
        start: date | None,
        end: date | None,
        by_period: bool,
    ) -> list[tuple[date | None, str, Counts]]:
        zone = ZoneInfo(timezone)
        sums: dict[tuple[date | None, str], list[int]] = {}
        for stored in self.responses.values():
            version = stored.counted
            day = version.responded_at.astimezone(zone).date()
            if (start is not None and day < start) or (end is not None and day > end):
                continue
            buckets = [b for b in buckets_of(version, zone) if b.grain == grain]
            held = {(b.dimension, b.value) for b in buckets}
            if not all(f in held for f in filters):
                continue
            groups = (
                [""] if group_by is None else [b.value for b in buckets if b.dimension == group_by]
            )
            column = ("promoter", "passive", "detractor").index(version.segment.value)
            for group in dict.fromkeys(groups):
                total = sums.setdefault(
                    (buckets[0].period_start if by_period else None, group), [0, 0, 0]
                )
                total[column] += 1
        return [(p, v, Counts(*c)) for (p, v), c in sorted(sums.items(), key=_order)]


def _order(item: tuple[tuple[date | None, str], list[int]]) -> tuple[date, str]:
    (period, value), _ = item
    return (period or date.min, value)
