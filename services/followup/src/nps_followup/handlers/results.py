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
    ActionOutcome,
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
    """Record each reported outcome on its action, all in one statement; return the ids of
    results for unknown actions."""
    ids = [r.event_id() for r in results]
    fresh = await repo.claim(CONSUMER, (str(i) for i in ids))
    new: list[tuple[uuid.UUID, ActionResultReported]] = []
    for event_id, result in zip(ids, results, strict=True):
        if str(event_id) in fresh:
            fresh.discard(str(event_id))  # the same event twice in a batch: the first counts
            new.append((event_id, result))
    found = await repo.record_action_outcomes(
        [
            ActionOutcome(
                r.action_id,
                ActionState.from_result(r.status),
                provider_message_id=r.provider_message_id,
                reason=r.reason,
            )
            for _, r in new
        ],
        at=now,
    )
    return [event_id for event_id, r in new if r.action_id not in found]


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
