"""What notify and the helpdesks report back: action outcomes and ticket status changes."""

import uuid
from datetime import datetime

from nps_events import (
    ActionResultReported,
    Actor,
    ActorKind,
    TicketStatusChanged,
)
from nps_followup.domain.cases import (
    ActionState,
    TimelineEntry,
)
from nps_followup.handlers.common import (
    CONSUMER,
    timeline_entry,
)
from nps_followup.handlers.ports import Results


async def record_action_results(
    repo: Results, results: list[ActionResultReported], *, now: datetime
) -> list[uuid.UUID]:
    """Record each reported outcome on its action; return the ids of results for unknown actions."""
    fresh = await repo.claim(CONSUMER, (str(r.event_id()) for r in results))
    unknown: list[uuid.UUID] = []
    for result in results:
        if str(result.event_id()) not in fresh:
            continue
        fresh.discard(str(result.event_id()))
        found = await repo.record_action_outcome(
            result.action_id,
            state=ActionState.from_result(result.status),
            provider_message_id=result.provider_message_id,
            reason=result.reason,
            at=now,
        )
        if not found:
            unknown.append(result.event_id())
    return unknown


async def record_ticket_changes(
    repo: Results, changes: list[TicketStatusChanged], *, now: datetime
) -> list[uuid.UUID]:
    """Record on its case each change a helpdesk reported of a ticket npsloop opened (an agent
    solved it, say). The case is not resolved by it: the owner resolves it with a root cause,
    and sees on the timeline that the helpdesk's side is done. Returns the ids of changes for
    unknown cases."""
    fresh = await repo.claim(CONSUMER, (str(c.event_id()) for c in changes))
    unknown: list[uuid.UUID] = []
    entries: list[tuple[uuid.UUID, TimelineEntry]] = []
    known = await repo.cases_by_id(c.case_id for c in changes)
    for change in changes:
        if str(change.event_id()) not in fresh:
            continue
        fresh.discard(str(change.event_id()))
        if change.case_id not in known:
            unknown.append(change.event_id())
            continue
        entries.append(
            (
                change.case_id,
                timeline_entry(
                    change.case_id,
                    "ticket_status",
                    change.occurred_at,
                    origin=str(change.event_id()),
                    actor=Actor(kind=ActorKind.PROGRAM, id=change.helpdesk, name=change.helpdesk),
                    helpdesk=change.helpdesk,
                    ticket_id=change.ticket_id,
                    status=change.status,
                    previous_status=change.previous_status,
                ),
            )
        )
    await repo.add_timelines(entries)
    return unknown
