"""Cases as stored: a row of the cases table to a `Case` and back, with their actions and
timelines loaded in one statement each."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Actor, ActorKind, Customer, Segment
from nps_events.text import clean_line, clean_text, email_error
from nps_followup.adapters import tables
from nps_followup.domain.cases import Action, ActionState, Case, CaseStatus, TimelineEntry


class RecordRow:
    """An asyncpg record (`nps_kit.db.driver_fetch`) read by attribute, as `case_from_row` reads a
    session's row."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return self._record[name]


def case_from_row(
    r: "Row[Any] | RecordRow",
    *,
    actions: tuple[Action, ...] = (),
    timeline: tuple[TimelineEntry, ...] = (),
) -> Case:
    return Case(
        case_id=r.case_id,
        response_id=r.response_id,
        source=r.source,
        survey_id=r.survey_id,
        customer_id=r.customer_id,
        customer_email=r.customer_email
        if r.customer_email is None or email_error(r.customer_email) is None
        else None,
        customer_name=clean_line(r.customer_name) or None if r.customer_name else None,
        segment=Segment(r.segment),
        score=r.score,
        comment=clean_text(r.comment) if r.comment else r.comment,
        status=CaseStatus(r.status),
        opened_at=r.opened_at,
        due_at=r.due_at,
        rule=r.rule,
        team=r.team,
        owner=r.owner,
        remind_at=r.remind_at,
        second_level_at=r.second_level_at,
        escalation_level=r.escalation_level,
        first_contact_at=r.first_contact_at,
        resolved_at=r.resolved_at,
        closed_at=r.closed_at,
        root_cause=r.root_cause,
        latest_score=r.latest_score,
        recovered=r.recovered,
        customer=stored_customer(r.customer) if r.customer is not None else None,
        themes=tuple(r.themes or ()),
        actions=actions,
        timeline=timeline,
    )


def stored_customer(data: dict[str, Any]) -> Customer:
    """The customer as stored with the case. One stored before the events refused control
    characters and lists of addresses (issue #12) may hold what a `SendEmail` can no longer
    carry: the name and attributes are made one line and an address that no longer passes is
    dropped, so that the case's timers and actions still go out (an email to nobody fails
    visibly on the case) instead of stopping every sweep at this case. Comments are cleaned
    the same way on load."""
    try:
        return Customer.model_validate(data)
    except ValidationError:
        pass
    name, email, attributes = data.get("name"), data.get("email"), data.get("attributes")
    return Customer.model_validate(
        {
            **data,
            "name": clean_line(name)[:200] or None if isinstance(name, str) else None,
            "email": email if isinstance(email, str) and email_error(email) is None else None,
            "attributes": {
                k: clean_line(v)[:200] for k, v in (attributes or {}).items() if isinstance(v, str)
            },
        }
    )


#: The columns `case_values` gives, in its order.
CASE_COLUMNS = (
    "case_id",
    "response_id",
    "source",
    "survey_id",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer",
    "segment",
    "score",
    "comment",
    "themes",
    "status",
    "opened_at",
    "due_at",
    "remind_at",
    "second_level_at",
    "rule",
    "team",
    "owner",
    "latest_score",
    "recovered",
)


def case_values(c: Case) -> tuple[Any, ...]:
    """A case as a row of `CASE_COLUMNS`, in its order."""
    return (
        c.case_id,
        c.response_id,
        c.source,
        c.survey_id,
        c.customer_id,
        c.customer_email,
        c.customer_name,
        c.customer.model_dump(mode="json") if c.customer is not None else None,
        c.segment.value,
        c.score,
        c.comment,
        list(c.themes),
        c.status.value,
        c.opened_at,
        c.due_at,
        c.remind_at,
        c.second_level_at,
        c.rule,
        c.team,
        c.owner,
        c.latest_score,
        c.recovered,
    )


def timeline_actor(e: Row[Any]) -> Actor | None:
    """A timeline entry's actor; entries written before actors were known (0003) have at most
    the free text a request gave, read as a person's name."""
    if e.actor_kind is None:
        return Actor(kind=ActorKind.PERSON, id=e.actor, name=e.actor) if e.actor else None
    return Actor(
        kind=ActorKind(e.actor_kind),
        id=e.actor_id or e.actor_kind,
        name=e.actor,
        rule=e.actor_rule,
    )


async def with_actions(
    session: AsyncSession, rows: Sequence[Row[Any]], *, timeline: bool
) -> list[Case]:
    """The cases of `rows` with their actions (and, with `timeline`, their timelines): one
    statement each, whatever the number of cases."""
    if not rows:
        return []
    ids = [r.case_id for r in rows]
    actions: dict[uuid.UUID, list[Action]] = defaultdict(list)
    action_rows = await session.execute(
        select(tables.actions)
        .where(tables.actions.c.case_id.in_(ids))
        .order_by(tables.actions.c.requested_at, tables.actions.c.action_id)
    )
    for a in action_rows:
        actions[a.case_id].append(
            Action(
                action_id=a.action_id,
                channel=a.channel,
                template=a.template,
                state=ActionState(a.state),
                provider_message_id=a.provider_message_id,
                reason=a.reason,
                requested_at=a.requested_at,
                updated_at=a.updated_at,
                scheduled_for=a.scheduled_for,
            )
        )
    entries: dict[uuid.UUID, list[TimelineEntry]] = defaultdict(list)
    if timeline:
        entry_rows = await session.execute(
            select(tables.timeline)
            .where(tables.timeline.c.case_id.in_(ids))
            .order_by(tables.timeline.c.seq)
        )
        for e in entry_rows:
            entries[e.case_id].append(
                TimelineEntry(e.entry_id, e.kind, e.at, timeline_actor(e), dict(e.details))
            )
    return [
        case_from_row(r, actions=tuple(actions[r.case_id]), timeline=tuple(entries[r.case_id]))
        for r in rows
    ]
