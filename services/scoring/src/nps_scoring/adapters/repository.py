"""Scoring's repository: the SQL behind its use cases, inside one unit of work."""

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, ResponseScored, Segment
from nps_kit import inbox, outbox
from nps_kit.db import driver_fetch
from nps_scoring.adapters import tables
from nps_scoring.domain.figures import ATTRIBUTE_PREFIX, Counted, Counts, Deltas
from nps_scoring.domain.transitions import PastResponse

SOURCE = "/scoring"


_RESPONSES_SQL = """
    INSERT INTO scoring.responses AS r
        (response_id, revision, source, survey_id, customer_id, score, segment, comment,
         responded_at, scored_at, previous_score, previous_segment, transition, themes, locale,
         attributes)
    SELECT response_id, versions, source, survey_id, customer_id, score, segment, comment,
           responded_at, scored_at, previous_score, previous_segment, transition,
           string_to_array(themes, ','), locale, CAST(attributes AS jsonb)
    FROM unnest(
        CAST(:response_id AS uuid[]), CAST(:versions AS int[]), CAST(:source AS text[]),
        CAST(:survey_id AS text[]), CAST(:customer_id AS text[]), CAST(:score AS int[]),
        CAST(:segment AS text[]), CAST(:comment AS text[]), CAST(:responded_at AS timestamptz[]),
        CAST(:scored_at AS timestamptz[]), CAST(:previous_score AS int[]),
        CAST(:previous_segment AS text[]), CAST(:transition AS text[]), CAST(:themes AS text[]),
        CAST(:locale AS text[]), CAST(:attributes AS text[]))
        AS v(response_id, versions, source, survey_id, customer_id, score, segment, comment,
             responded_at, scored_at, previous_score, previous_segment, transition, themes,
             locale, attributes)
    ON CONFLICT (response_id) DO UPDATE SET
        revision = r.revision + excluded.revision,
        source = excluded.source,
        survey_id = excluded.survey_id,
        score = excluded.score,
        segment = excluded.segment,
        comment = excluded.comment,
        responded_at = excluded.responded_at,
        scored_at = excluded.scored_at,
        previous_score = excluded.previous_score,
        previous_segment = excluded.previous_segment,
        transition = excluded.transition,
        themes = excluded.themes,
        locale = excluded.locale,
        attributes = excluded.attributes
"""

# One round trip for what a batch needs to know before it is scored (a batch of one paid ~0.4 ms
# of CPU per statement): the stored versions of its responses, locked (`i` is null), and each
# response's previous one of the same customer (`i` is its position in the batch).
_KNOWN_SQL = """
    WITH locked AS (
        SELECT r.response_id, r.revision, r.score, r.segment, r.responded_at, r.source,
               r.survey_id, r.themes, r.attributes
        FROM scoring.responses AS r
        WHERE r.response_id = ANY(CAST(:rid AS uuid[]))
        FOR UPDATE
    )
    SELECT CAST(NULL AS int) AS i, response_id, revision, score, segment, responded_at, source,
           survey_id, themes, attributes
    FROM locked
    UNION ALL
    SELECT k.i, p.response_id, NULL, p.score, NULL, p.responded_at, NULL, NULL, NULL, NULL
    FROM unnest(CAST(:i AS int[]), CAST(:customer AS text[]), CAST(:rid AS uuid[]),
                CAST(:at AS timestamptz[])) AS k(i, customer_id, response_id, responded_at)
    CROSS JOIN LATERAL (
        SELECT r.response_id, r.responded_at, r.score
        FROM scoring.responses AS r
        WHERE r.customer_id = k.customer_id
          AND r.responded_at <= k.responded_at
          AND r.response_id <> k.response_id
          AND (r.responded_at, r.response_id::text) < (k.responded_at, k.response_id::text)
        ORDER BY r.responded_at DESC, r.response_id::text DESC
        LIMIT 1
    ) AS p
"""

_FIGURES_SQL = """
    INSERT INTO scoring.figures AS f
        (grain, dimension, value, period_start, promoters, passives, detractors)
    SELECT * FROM unnest(
        CAST(:grain AS text[]), CAST(:dimension AS text[]), CAST(:value AS text[]),
        CAST(:period_start AS date[]), CAST(:promoters AS bigint[]), CAST(:passives AS bigint[]),
        CAST(:detractors AS bigint[]))
    ON CONFLICT (grain, dimension, value, period_start) DO UPDATE SET
        promoters = f.promoters + excluded.promoters,
        passives = f.passives + excluded.passives,
        detractors = f.detractors + excluded.detractors
"""
_UPSERT_FIGURES = text(_FIGURES_SQL)
# A batch's figures and responses in one statement (a batch of one paid ~0.3 ms of CPU per
# statement). PostgreSQL runs a data-modifying WITH to completion whether or not it is read.
_STORE_SQL = f"WITH moved AS ({_FIGURES_SQL}) {_RESPONSES_SQL}"

_DELETE_EMPTY_FIGURES_SQL = """
    DELETE FROM scoring.figures AS f
    USING unnest(
        CAST(:grain AS text[]), CAST(:dimension AS text[]), CAST(:value AS text[]),
        CAST(:period_start AS date[])) AS k(grain, dimension, value, period_start)
    WHERE (f.grain, f.dimension, f.value, f.period_start)
          = (k.grain, k.dimension, k.value, k.period_start)
      AND f.promoters = 0 AND f.passives = 0 AND f.detractors = 0
"""
_DELETE_EMPTY_FIGURES = text(_DELETE_EMPTY_FIGURES_SQL)


# The consumer's hot statements run on the transaction's asyncpg connection
# (`nps_kit.db.driver_fetch`), which prepares each once per connection: through the session
# each cost 100-300 µs of CPU more per batch (docs/performance.md, scoring, issue #20, third
# session).
_KNOWN = text(_KNOWN_SQL)
_STORE = text(_STORE_SQL)

# A response's themes as figures count them: no_comment, unmatched, or its themes.
_THEMES = (
    "(CASE WHEN r.themes IS NULL THEN ARRAY['no_comment'] "
    "WHEN cardinality(r.themes) = 0 THEN ARRAY['unmatched'] "
    "ELSE CAST(r.themes AS text[]) END)"
)


def _condition(dimension: str, param: str, params: dict[str, object]) -> str:
    if dimension == "source":
        return f"r.source = :{param}"
    if dimension == "survey":
        return f"r.survey_id = :{param}"
    if dimension == "theme":
        return f"CAST(:{param} AS text) = ANY({_THEMES})"
    if dimension.startswith(ATTRIBUTE_PREFIX):
        params[f"{param}_key"] = dimension.removeprefix(ATTRIBUTE_PREFIX)
        return f"r.attributes ->> CAST(:{param}_key AS text) = :{param}"
    raise ValueError(f"no dimension {dimension!r}")


def _group(dimension: str, params: dict[str, object]) -> tuple[str, str, str]:
    """The SQL of a response's group in `dimension`, the join it needs, and the condition
    to be in a group at all (a customer without the attribute is in none)."""
    if dimension == "source":
        return "r.source", "", "TRUE"
    if dimension == "survey":
        return "r.survey_id", "", "TRUE"
    if dimension == "theme":
        return "g.theme", f"CROSS JOIN LATERAL unnest({_THEMES}) AS g(theme)", "TRUE"
    if dimension.startswith(ATTRIBUTE_PREFIX):
        params["group_key"] = dimension.removeprefix(ATTRIBUTE_PREFIX)
        value = "r.attributes ->> CAST(:group_key AS text)"
        return value, "", f"{value} IS NOT NULL"
    raise ValueError(f"no dimension {dimension!r}")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: uuid.UUID
    comment: str | None
    locale: str | None
    counted: Counted


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored response as the figures count it, and its revision."""

    counted: Counted
    revision: int


@dataclass(frozen=True, slots=True)
class KnownResponses:
    """What is stored about a batch's responses (`ScoringRepository.known`)."""

    #: By position in the batch: the customer's stored response answered last before it.
    previous: dict[int, PastResponse]
    #: By response id: the stored version of a response already known, locked.
    versions: dict[uuid.UUID, StoredVersion]


@dataclass(frozen=True, slots=True)
class AnsweredResponse:
    """One of a customer's responses, as the customer's score history shows it."""

    response_id: uuid.UUID
    source: str
    survey_id: str
    score: int
    segment: Segment
    comment: str | None
    themes: tuple[str, ...]
    responded_at: datetime
    transition: str | None
    #: The customer's preferred language when they answered, if known.
    locale: str | None = None


def _counted(row: Any) -> Counted:
    return Counted(
        segment=Segment(row.segment),
        responded_at=row.responded_at,
        source=row.source,
        survey_id=row.survey_id,
        themes=None if row.themes is None else tuple(row.themes),
        attributes=dict(row.attributes or {}),
    )


def _counted_record(row: Any) -> Counted:
    """`_counted` of a row as asyncpg returns it (its JSONB decoded by the codec SQLAlchemy's
    dialect sets on every connection)."""
    attributes = row["attributes"]
    return Counted(
        segment=Segment(row["segment"]),
        responded_at=row["responded_at"],
        source=row["source"],
        survey_id=row["survey_id"],
        themes=None if row["themes"] is None else tuple(row["themes"]),
        attributes=dict(attributes or {}),
    )


def _response_columns(scored: list[ResponseScored]) -> dict[str, list[Any]]:
    """The responses' upsert parameters: one array per column (SQLAlchemy took longer to
    compile a 500-row multi-VALUES insert than PostgreSQL took to run it). ON CONFLICT DO
    UPDATE cannot touch a row twice in one statement: the last version of each response is
    stored, its revision moved on by its number of versions here."""
    positions: dict[uuid.UUID, list[int]] = {}
    for position, s in enumerate(scored):
        positions.setdefault(s.response_id, []).append(position)
    last = [scored[p[-1]] for p in positions.values()]
    return {
        "response_id": [s.response_id for s in last],
        "versions": [len(positions[s.response_id]) for s in last],
        "source": [s.source for s in last],
        "survey_id": [s.survey_id for s in last],
        "customer_id": [s.customer.id for s in last],
        "score": [s.score for s in last],
        "segment": [s.segment.value for s in last],
        "comment": [s.comment for s in last],
        "responded_at": [s.responded_at for s in last],
        "scored_at": [s.scored_at for s in last],
        "previous_score": [s.previous_score for s in last],
        "previous_segment": [
            None if s.previous_segment is None else s.previous_segment.value for s in last
        ],
        "transition": [None if s.transition is None else s.transition.value for s in last],
        "themes": [None if s.themes is None else ",".join(s.themes) for s in last],
        "locale": [s.customer.locale for s in last],
        "attributes": [json.dumps(s.customer.attributes) for s in last],
    }


def _figure_columns(deltas: Deltas) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The figures' upsert parameters, one array per column, and the keys of the buckets that
    may be left empty: only a bucket with a negative change can come to 0/0/0 (a bucket with
    none only grows), so the delete after the upsert looks at those alone — a few per batch
    of updates, not every bucket the batch touched. Rows are written in key order, so
    concurrent batches lock shared buckets in the same order and never deadlock."""
    # By key alone (keys are unique): comparing the (key, counts) pairs tested each key for
    # equality before ordering it: the sort took ~1.5 times as long.
    changed = sorted(((k, v) for k, v in deltas.items() if any(v)), key=itemgetter(0))
    columns: dict[str, list[Any]] = {
        "grain": [k.grain for k, _ in changed],
        "dimension": [k.dimension for k, _ in changed],
        "value": [k.value for k, _ in changed],
        "period_start": [k.period_start for k, _ in changed],
        "promoters": [v[0] for _, v in changed],
        "passives": [v[1] for _, v in changed],
        "detractors": [v[2] for _, v in changed],
    }
    shrunk = [k for k, v in changed if min(v) < 0]
    emptiable: dict[str, list[Any]] = {
        "grain": [k.grain for k in shrunk],
        "dimension": [k.dimension for k in shrunk],
        "value": [k.value for k in shrunk],
        "period_start": [k.period_start for k in shrunk],
    }
    return columns, emptiable


class ScoringRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete the customer's responses and their queued, unpublished events. The figures
        keep their counts: they are per segment and period, and hold nothing of the customer."""
        responses = await self.session.execute(
            tables.responses.delete().where(tables.responses.c.customer_id == customer_id)
        )
        queued = await outbox.discard_for_key(self.session, tables.outbox, customer_id.encode())
        return {"responses": int(getattr(responses, "rowcount", 0) or 0), "outbox": queued}

    async def responses_of(self, customer_id: str, *, limit: int) -> list[AnsweredResponse]:
        """The customer's latest `limit` responses, newest first (an index scan on
        customer_id)."""
        r = tables.responses
        rows = await self.session.execute(
            select(r)
            .where(r.c.customer_id == customer_id)
            .order_by(r.c.responded_at.desc(), r.c.response_id)
            .limit(limit)
        )
        return [
            AnsweredResponse(
                response_id=row.response_id,
                source=row.source,
                survey_id=row.survey_id,
                score=row.score,
                segment=Segment(row.segment),
                comment=row.comment,
                themes=tuple(row.themes or ()),
                responded_at=row.responded_at,
                transition=row.transition,
                locale=row.locale,
            )
            for row in rows
        ]

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def known(self, keys: list[tuple[str, uuid.UUID, datetime]]) -> KnownResponses:
        """What is stored about the responses of a batch, read in one statement: for each
        (customer id, response id, responded at), by position, the customer's stored response
        answered last before it (another response id), if any; and the stored version of each
        known response with its revision, locked until the transaction ends."""
        if not keys:
            return KnownResponses({}, {})
        rows = await driver_fetch(
            self.session,
            _KNOWN,
            {
                "i": list(range(len(keys))),
                "customer": [k[0] for k in keys],
                "rid": [k[1] for k in keys],
                "at": [k[2] for k in keys],
            },
        )
        previous: dict[int, PastResponse] = {}
        versions: dict[uuid.UUID, StoredVersion] = {}
        for row in rows:
            # asyncpg's own UUID compares and hashes as `uuid.UUID` does, but is not one.
            response_id = uuid.UUID(bytes=row["response_id"].bytes)
            if row["i"] is None:
                versions[response_id] = StoredVersion(_counted_record(row), row["revision"])
            else:
                previous[row["i"]] = PastResponse(response_id, row["responded_at"], row["score"])
        return KnownResponses(previous, versions)

    async def store(self, scored: list[ResponseScored], deltas: Deltas) -> None:
        """Store each scored response, replacing the stored version of one already known (its
        stored revision moves on by one per version in `scored`), and add each bucket's
        change to the figures, in one statement; then drop buckets left empty."""
        figures, emptiable = _figure_columns(deltas)
        await driver_fetch(self.session, _STORE, {**figures, **_response_columns(scored)})
        if emptiable["grain"]:
            await driver_fetch(self.session, _DELETE_EMPTY_FIGURES, emptiable)

    async def apply_deltas(self, deltas: Deltas) -> None:
        """Add each bucket's change to the figures in one statement; drop buckets left empty."""
        figures, emptiable = _figure_columns(deltas)
        if not figures["grain"]:
            return
        await self.session.execute(_UPSERT_FIGURES, figures)
        if emptiable["grain"]:
            await self.session.execute(_DELETE_EMPTY_FIGURES, emptiable)

    async def clear_figures(self) -> None:
        """Empty the figures for a rebuild. Until the transaction ends, scoring a batch waits:
        responses cannot change under the rebuild, and two rebuilds do not run at once.

        EXCLUSIVE (not SHARE ROW EXCLUSIVE) so that it also conflicts with the row locks a
        batch takes on its responses (`stored_versions`) before it touches any figure: a batch
        waits before it holds a figure row the rebuild needs, so the two cannot deadlock."""
        await self.session.execute(text("LOCK TABLE scoring.responses IN EXCLUSIVE MODE"))
        await self.session.execute(tables.figures.delete())

    async def stream_responses(self, *, chunk: int = 5000) -> AsyncIterator[list[StoredResponse]]:
        """Every stored response, in chunks, in response id order."""
        r = tables.responses.c
        after: uuid.UUID | None = None
        while True:
            query = (
                select(
                    r.response_id,
                    r.segment,
                    r.responded_at,
                    r.source,
                    r.survey_id,
                    r.themes,
                    r.attributes,
                    r.comment,
                    r.locale,
                )
                .order_by(r.response_id)
                .limit(chunk)
            )
            if after is not None:
                query = query.where(r.response_id > after)
            rows = (await self.session.execute(query)).all()
            if not rows:
                return
            yield [
                StoredResponse(row.response_id, row.comment, row.locale, _counted(row))
                for row in rows
            ]
            after = rows[-1].response_id

    async def set_themes(self, themes: dict[uuid.UUID, list[str] | None]) -> None:
        if not themes:
            return
        r = tables.responses.c
        stmt = (
            update(tables.responses)
            .where(r.response_id == bindparam("rid"))
            .values(themes=bindparam("new_themes"))
        )
        await self.session.execute(
            stmt, [{"rid": rid, "new_themes": t} for rid, t in themes.items()]
        )

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
        `grain` (`by_period`) or summed over the range, as (period start, value, counts)."""
        f = tables.figures.c
        period = f.period_start if by_period else None
        columns = [
            f.value,
            func.sum(f.promoters).label("promoters"),
            func.sum(f.passives).label("passives"),
            func.sum(f.detractors).label("detractors"),
        ]
        query = select(*columns).where(f.grain == grain, f.dimension == dimension)
        if period is not None:
            query = query.add_columns(period).group_by(f.value, period).order_by(period, f.value)
        else:
            query = query.group_by(f.value).order_by(f.value)
        if value is not None:
            query = query.where(f.value == value)
        if start is not None:
            query = query.where(f.period_start >= start)
        if end is not None:
            query = query.where(f.period_start <= end)
        return [
            (
                row.period_start if by_period else None,
                row.value,
                Counts(int(row.promoters), int(row.passives), int(row.detractors)),
            )
            for row in await self.session.execute(query)
        ]

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
        filter and a group on different dimensions): counted from the stored responses by
        the same rules (`domain.figures.buckets_of`). A scan of the responses in the range."""
        params: dict[str, object] = {"tz": timezone}
        local = "(r.responded_at AT TIME ZONE CAST(:tz AS text))"
        day = f"CAST({local} AS date)"
        period = {
            "day": day,
            "week": f"CAST(date_trunc('week', {local}) AS date)",
            "month": f"CAST(date_trunc('month', {local}) AS date)",
        }[grain]
        where = ["TRUE"]
        lateral = ""
        for i, (dimension, value) in enumerate(filters):
            params[f"f{i}"] = value
            where.append(_condition(dimension, f"f{i}", params))
        group = "''"
        if group_by is not None:
            group, lateral, grouped = _group(group_by, params)
            where.append(grouped)
        # Bounds on responded_at itself (midnight in the time zone), so its index serves them.
        if start is not None:
            params["start"] = start
            where.append(
                "r.responded_at >= CAST(CAST(:start AS date) AS timestamp) "
                "AT TIME ZONE CAST(:tz AS text)"
            )
        if end is not None:
            params["end"] = end
            where.append(
                "r.responded_at < CAST(CAST(:end AS date) + 1 AS timestamp) "
                "AT TIME ZONE CAST(:tz AS text)"
            )
        query = f"""
            SELECT {period if by_period else "CAST(NULL AS date)"} AS period_start,
                   {group} AS value,
                   count(*) FILTER (WHERE r.segment = 'promoter') AS promoters,
                   count(*) FILTER (WHERE r.segment = 'passive') AS passives,
                   count(*) FILTER (WHERE r.segment = 'detractor') AS detractors
            FROM scoring.responses AS r {lateral}
            WHERE {" AND ".join(where)}
            GROUP BY 1, 2
            ORDER BY 1, 2
        """  # noqa: S608 - every fragment is ours; every value is a bind parameter
        return [
            (
                row.period_start,
                row.value,
                Counts(int(row.promoters), int(row.passives), int(row.detractors)),
            )
            for row in await self.session.execute(text(query), params)
        ]

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)
