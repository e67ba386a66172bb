"""The case queue: its filters, its urgency order, and the cursor that pages through it.

Urgency order, as of an instant `as_of`:

1. breached: past the contact deadline with nobody having reached the customer (nor the
   case resolved) by `as_of`, by deadline;
2. every other case with a deadline, by deadline, soonest first;
3. cases without a deadline;

with the case id breaking ties. On a first page `as_of` is now, and "breached" is exactly
the open cases past their deadline. A cursor carries its first page's `as_of`, and each
case's place is read as it stood then: a case that breaches, is reached or is resolved while
someone pages keeps its place, so a walk through the pages shows every case at most once
and skips none that still matches (a case that stops matching a filter drops out; a new one
shows where it belongs, if that is still ahead).
"""

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from nps_followup.domain.cases import Case, CaseStatus


class Urgency(IntEnum):
    BREACHED = 0
    DUE = 1
    NO_DEADLINE = 2


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What a person narrows the queue to; empty tuples and None mean "any"."""

    statuses: tuple[CaseStatus, ...] = ()
    segments: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    owner: str | None = None
    team: str | None = None
    #: Part of the customer's name, email address or id, any case.
    customer: str | None = None
    #: One customer's cases, by their exact id.
    customer_id: str | None = None

    def fingerprint(self) -> str:
        """A short digest of the filters: a cursor only continues the walk it began."""
        canonical = json.dumps(
            [
                sorted(s.value for s in self.statuses),
                sorted(self.segments),
                sorted(self.sources),
                sorted(self.themes),
                self.score_min,
                self.score_max,
                self.owner,
                self.team,
                (self.customer or "").lower() or None,
                self.customer_id,
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Place:
    """Where a case stands in the urgency order (compare their `key`s to compare cases)."""

    urgency: Urgency
    due_at: datetime | None
    case_id: uuid.UUID

    def key(self) -> tuple[int, float, str]:
        """A sort key that also orders cases without a deadline (None)."""
        due = self.due_at.timestamp() if self.due_at is not None else float("inf")
        return (int(self.urgency), due, str(self.case_id))


def place_of(case: Case, as_of: datetime) -> Place:
    if case.due_at is None:
        return Place(Urgency.NO_DEADLINE, None, case.case_id)
    breached = (
        case.due_at < as_of
        and (case.first_contact_at is None or case.first_contact_at > as_of)
        and (case.resolved_at is None or case.resolved_at > as_of)
    )
    return Place(Urgency.BREACHED if breached else Urgency.DUE, case.due_at, case.case_id)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A page boundary: the cases after (or before) `place`, in the order as of `as_of`."""

    as_of: datetime
    place: Place
    backwards: bool
    filters: str


class BadCursor(ValueError):  # noqa: N818 - named for what it is
    """A cursor this queue did not hand out, or one of another walk (other filters)."""


def encode_cursor(cursor: Cursor) -> str:
    """Opaque to clients: base64url of a small JSON document."""
    document = {
        "v": 1,
        "at": cursor.as_of.isoformat(),
        "u": int(cursor.place.urgency),
        "d": cursor.place.due_at.isoformat() if cursor.place.due_at else None,
        "id": str(cursor.place.case_id),
        "b": cursor.backwards,
        "f": cursor.filters,
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, *, filters: QueueFilter) -> Cursor:
    """The cursor `text` stands for; BadCursor if it is not one of ours for these filters."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("v") != 1:
            document = {}  # not ours: the lookups below fail
        as_of = datetime.fromisoformat(document["at"])
        due = datetime.fromisoformat(document["d"]) if document["d"] is not None else None
        urgency = Urgency(document["u"])
        place = Place(urgency, due, uuid.UUID(document["id"]))
        backwards = document["b"]
        fingerprint = document["f"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadCursor("not a cursor of this queue") from exc
    if as_of.tzinfo is None or (due is not None and due.tzinfo is None):
        raise BadCursor("not a cursor of this queue")
    if (due is None) != (urgency is Urgency.NO_DEADLINE) or not isinstance(backwards, bool):
        raise BadCursor("not a cursor of this queue")
    if fingerprint != filters.fingerprint():
        raise BadCursor("the cursor belongs to other filters: start again from the first page")
    return Cursor(as_of=as_of, place=place, backwards=backwards, filters=fingerprint)
