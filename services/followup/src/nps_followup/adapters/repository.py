"""Followup's repository: the SQL behind its use cases, inside one unit of work. One object
implements every port; the SQL of each concern is in its own module beside this one."""

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event
from nps_followup.adapters import tables
from nps_followup.adapters.action_store import (
    ACTION_COLUMNS,
    ActionRow,
    ActionStore,
    action_columns,
)
from nps_followup.adapters.bulk import together, unnest_insert
from nps_followup.adapters.case_reads import CaseReads, breached
from nps_followup.adapters.case_store import CaseStore, insert_timeline, timeline_columns
from nps_followup.adapters.contact_rules import (
    ContactRuleStore,
    insert_last_messages,
    last_message_columns,
)
from nps_followup.adapters.referrals import ReferralStore
from nps_followup.adapters.response_records import (
    ResponseRecords,
    insert_scored,
    scored_columns,
)
from nps_followup.adapters.resurvey import ResurveyStore
from nps_followup.adapters.timer_store import DueTimer, TimerStore, due_timers_query
from nps_followup.domain.cases import Action, TimelineEntry
from nps_followup.domain.simulation import StoredResponse
from nps_kit import inbox, outbox
from nps_kit.db import driver_fetch

# What the handlers, the bench and the tests import from here, wherever it lives now.
__all__ = [
    "SOURCE",
    "ActionRow",
    "DueTimer",
    "FollowupRepository",
    "breached",
    "due_timers_query",
]

SOURCE = "/followup"


class FollowupRepository(
    CaseStore,
    CaseReads,
    ActionStore,
    TimerStore,
    ContactRuleStore,
    ResponseRecords,
    ResurveyStore,
    ReferralStore,
):
    """Every port of `handlers.ports` over one session (the caller's unit of work): the SQL
    of each concern lives in its own module (`case_store`, `case_reads`, `action_store`,
    `timer_store`, `contact_rules`, `response_records`, `resurvey`, `referrals`; the
    closed-loop figures in `figures`); what spans them is here."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete the customer's cases with everything hanging off them (actions, timers,
        timeline), their opt-outs and last-message time, and their queued, unpublished events.
        The customer is then unknown to followup: a new response opens a new case."""
        cases = select(tables.cases.c.case_id).where(tables.cases.c.customer_id == customer_id)
        erased: dict[str, int] = {}
        for name, table in (
            ("timeline", tables.timeline),
            ("timers", tables.timers),
            ("actions", tables.actions),
            ("resurveys", tables.resurveys),
        ):
            result = await self.session.execute(table.delete().where(table.c.case_id.in_(cases)))
            erased[name] = int(getattr(result, "rowcount", 0) or 0)
        for name, table in (
            ("cases", tables.cases),
            ("responses_not_acted_on", tables.responses_not_acted_on),
            ("scored_responses", tables.scored_responses),
            ("do_not_contact", tables.do_not_contact),
            ("last_messages", tables.last_messages),
            ("referral_codes", tables.referral_codes),
            ("referrals", tables.referrals),
        ):
            result = await self.session.execute(
                table.delete().where(table.c.customer_id == customer_id)
            )
            erased[name] = int(getattr(result, "rowcount", 0) or 0)
        erased["outbox"] = await outbox.discard_for_key(
            self.session, tables.outbox, customer_id.encode()
        )
        return erased

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def read_only(self) -> None:
        """Make this transaction refuse every write (PostgreSQL's READ ONLY): what a replay
        runs in. Must be the transaction's first statement."""
        await self.session.execute(text("SET TRANSACTION READ ONLY"))

    async def add_records(
        self,
        *,
        actions: Sequence[tuple[uuid.UUID, Action]],
        priority: dict[uuid.UUID, str],
        recipient: dict[uuid.UUID, str],
        timeline: Sequence[tuple[uuid.UUID, TimelineEntry]],
        messaged: Iterable[str],
        at: datetime,
        scored: Sequence[StoredResponse] = (),
    ) -> None:
        """The actions, timeline entries, last messages and records of scored responses of a
        batch in one statement (a round trip each before), with only the kinds it has."""
        params: dict[str, list[Any]] = {}
        if actions:
            params |= action_columns(
                actions, exempt=set(), priority=priority, recipient=recipient, prefix="a_"
            )
        if timeline:
            params |= timeline_columns(timeline, prefix="l_")
        messages = last_message_columns(messaged, at, prefix="m_")
        if messages["m_customer_id"]:
            params |= messages
        if scored:
            params |= scored_columns(scored, prefix="s_")
        if params:
            kinds = (bool(actions), bool(timeline), bool(messages["m_customer_id"]), bool(scored))
            await driver_fetch(self.session, _records_statement(kinds), params)

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)


@functools.cache
def _records_statement(kinds: tuple[bool, bool, bool, bool]) -> TextClause:
    """The statement of `add_records` for the kinds a batch has (actions, timeline, last
    messages, records of scored responses), each built once."""
    statements = (
        unnest_insert(tables.actions, ACTION_COLUMNS, prefix="a_"),
        insert_timeline(prefix="l_"),
        insert_last_messages(prefix="m_"),
        insert_scored(prefix="s_"),
    )
    return together(*(s for s, wanted in zip(statements, kinds, strict=True) if wanted))
