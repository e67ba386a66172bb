"""What scoring's use cases need of its storage: narrow ports, so that a use case can be tested
against an in-memory fake (tests/support/scoring_fakes.py) and the SQL against PostgreSQL.
`adapters.repository.ScoringRepository` implements them all; every method runs inside the
caller's unit of work."""

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, datetime
from typing import Protocol

from nps_events import Event, ResponseScored
from nps_scoring.adapters.repository import AnsweredResponse, KnownResponses, StoredResponse
from nps_scoring.domain.figures import Counts, Deltas


class FigureWrites(Protocol):
    async def apply_deltas(self, deltas: Deltas) -> None:
        """Add each bucket's change to the figures; a bucket left empty is dropped."""
        ...


class ScoredResponses(FigureWrites, Protocol):
    """What scoring a batch of responses needs: the inbox, the stored responses, the figures
    and the outbox."""

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        ...

    async def known(self, keys: list[tuple[str, uuid.UUID, datetime]]) -> KnownResponses:
        """What is stored about a batch's responses, each given as (customer id, response id,
        responded at): by position, the customer's stored response answered last before it
        (another response id), if any; by response id, the stored version of each known
        response and its revision, locked until the transaction ends."""
        ...

    async def store(self, scored: list[ResponseScored], deltas: Deltas) -> None:
        """Store each scored response, replacing the stored version of one already known (the
        stored revision moves on by one per version in `scored`), and add each bucket's change
        to the figures; a bucket left empty is dropped."""
        ...

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        """Queue `events` for the relay, in the same transaction as the state they describe."""
        ...


class FigureRebuild(FigureWrites, Protocol):
    """What recounting every figure from the stored responses needs."""

    async def clear_figures(self) -> None:
        """Empty the figures; responses cannot change until the transaction ends."""
        ...

    def stream_responses(self, *, chunk: int = 5000) -> AsyncIterator[list[StoredResponse]]:
        """Every stored response, in chunks, in response id order."""
        ...

    async def set_themes(self, themes: dict[uuid.UUID, list[str] | None]) -> None:
        """Replace the themes of the given responses."""
        ...


class FigureReads(Protocol):
    """What reading the figures needs."""

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
        """Counts of `dimension` (one `value`, or every value) in [start, end], per period of
        `grain` (`by_period`) or summed over the range, as (period start, value, counts),
        ordered by period then value."""
        ...

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
        """What `figures` answers, for questions the figures cannot (several filters, or a
        filter and a group on different dimensions): counted from the stored responses by the
        same rules (`domain.figures.buckets_of`), with days in `timezone`."""
        ...


class CustomerHistory(Protocol):
    """What reading one customer's answers needs."""

    async def responses_of(self, customer_id: str, *, limit: int) -> list[AnsweredResponse]:
        """The customer's responses (the latest `limit`), newest first."""
        ...
