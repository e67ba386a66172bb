"""The case queue's pure rules: where a case stands in urgency order as of an instant, the
opaque cursor (round trip, refusals), and when a team's business clock is running."""

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import holidays
import pytest

from nps_events import Segment
from nps_followup.domain.calendar import BusinessCalendar
from nps_followup.domain.cases import Case, CaseStatus
from nps_followup.domain.policy import Team
from nps_followup.domain.queue import (
    BadCursor,
    Cursor,
    Place,
    QueueFilter,
    Urgency,
    decode_cursor,
    encode_cursor,
    place_of,
)

AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CASE = Case(
    case_id=uuid.UUID(int=7),
    response_id=uuid.UUID(int=8),
    source="delighted",
    survey_id="s",
    customer_id="c",
    customer_email=None,
    customer_name=None,
    segment=Segment.DETRACTOR,
    score=2,
    comment=None,
    status=CaseStatus.OPEN,
    opened_at=AS_OF - timedelta(days=3),
    due_at=AS_OF - timedelta(hours=1),
)
LATER = AS_OF + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("changes", "urgency", "why"),
    [
        ({}, Urgency.BREACHED, "open, past its deadline"),
        ({"due_at": AS_OF + timedelta(hours=1)}, Urgency.DUE, "open, deadline ahead"),
        ({"due_at": None, "status": CaseStatus.AUTOMATED}, Urgency.NO_DEADLINE, "no deadline"),
        (
            {"status": CaseStatus.CONTACTED, "first_contact_at": AS_OF - timedelta(hours=2)},
            Urgency.DUE,
            "reached before the walk began",
        ),
        (
            {"status": CaseStatus.CONTACTED, "first_contact_at": LATER},
            Urgency.BREACHED,
            "reached during the walk: keeps the place it had",
        ),
        (
            {"status": CaseStatus.RESOLVED, "resolved_at": LATER},
            Urgency.BREACHED,
            "resolved unreached during the walk",
        ),
        (
            {"status": CaseStatus.RESOLVED, "resolved_at": AS_OF - timedelta(minutes=1)},
            Urgency.DUE,
            "resolved before the walk began",
        ),
    ],
)
def test_a_case_stands_in_the_queue_as_it_stood_at_the_walks_first_page(
    changes: dict[str, object], urgency: Urgency, why: str
) -> None:
    place = place_of(replace(CASE, **changes), AS_OF)  # type: ignore[arg-type]
    assert place.urgency is urgency, why


def test_places_order_breached_then_by_deadline_then_those_without_one() -> None:
    soon = Place(Urgency.DUE, AS_OF, uuid.UUID(int=1))
    places = [
        Place(Urgency.NO_DEADLINE, None, uuid.UUID(int=1)),
        Place(Urgency.DUE, AS_OF, uuid.UUID(int=2)),
        soon,
        Place(Urgency.BREACHED, AS_OF + timedelta(days=9), uuid.UUID(int=3)),
    ]
    ordered = sorted(places, key=Place.key)
    assert [p.urgency for p in ordered] == [
        Urgency.BREACHED,
        Urgency.DUE,
        Urgency.DUE,
        Urgency.NO_DEADLINE,
    ]
    assert ordered[1] == soon, "the case id breaks a tie"


FILTERS = QueueFilter(statuses=(CaseStatus.OPEN,), segments=("detractor",), customer="Ada")


@pytest.mark.parametrize("backwards", [False, True])
@pytest.mark.parametrize("due_at", [AS_OF, None])
def test_a_cursor_reads_back_as_it_was_written(backwards: bool, due_at: datetime | None) -> None:
    urgency = Urgency.DUE if due_at else Urgency.NO_DEADLINE
    cursor = Cursor(
        as_of=AS_OF,
        place=Place(urgency, due_at, uuid.uuid4()),
        backwards=backwards,
        filters=FILTERS.fingerprint(),
    )
    text = encode_cursor(cursor)
    assert text.isascii()
    assert "=" not in text
    assert decode_cursor(text, filters=FILTERS) == cursor


def test_the_customer_search_is_the_same_walk_in_any_case() -> None:
    assert replace(FILTERS, customer="ADA").fingerprint() == FILTERS.fingerprint()
    assert replace(FILTERS, segments=("passive",)).fingerprint() != FILTERS.fingerprint()


def _forged(**document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


GOOD = {
    "v": 1,
    "at": AS_OF.isoformat(),
    "u": 1,
    "d": AS_OF.isoformat(),
    "id": str(uuid.UUID(int=1)),
    "b": False,
    "f": FILTERS.fingerprint(),
}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _forged(),
        _forged(**{**GOOD, "v": 2}),
        _forged(**{**GOOD, "u": 9}),
        _forged(**{**GOOD, "id": 5}),
        _forged(**{**GOOD, "d": None}),  # due urgency without a deadline
        _forged(**{**GOOD, "at": "2026-11-24T12:00:00"}),  # no offset
        _forged(**{**GOOD, "b": "yes"}),
        _forged(**{**GOOD, "f": "0123456789ab"}),  # other filters
        "[1]",
    ],
)
def test_a_cursor_the_queue_did_not_hand_out_is_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(text, filters=FILTERS)


LONDON = BusinessCalendar.of(
    Team(timezone="Europe/London", country="GB", lead="l@x.io", members=("m@x.io",)),
    holidays.country_holidays("GB"),
)


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        ("2026-11-24T12:00:00+00:00", "2026-11-24T17:00:00+00:00"),  # a Tuesday at noon
        ("2026-11-24T08:59:00+00:00", None),  # before opening
        ("2026-11-24T17:00:00+00:00", None),  # closing time
        ("2026-11-28T12:00:00+00:00", None),  # a Saturday
        ("2026-12-25T12:00:00+00:00", None),  # Christmas Day
        ("2026-07-01T12:00:00+00:00", "2026-07-01T16:00:00+00:00"),  # summer time: 17:00 BST
    ],
)
def test_the_business_clock_runs_until_the_end_of_the_working_day(
    moment: str, until: str | None
) -> None:
    expected = datetime.fromisoformat(until) if until else None
    assert LONDON.at_work_until(datetime.fromisoformat(moment)) == expected
