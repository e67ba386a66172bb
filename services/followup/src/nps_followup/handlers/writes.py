"""One accumulator for what a batch writes: opening a batch of cases and sweeping due timers
gather their writes here and flush them together, so that a batch takes a handful of
statements whatever its size (10,000 escalations must take seconds, not a few statements
per timer)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from nps_events import Event, SendEmail, SendSms
from nps_followup.domain.cases import Action, ActionState, Case, TimelineEntry
from nps_followup.domain.resurvey import ResurveyAnswer, ResurveyRequest
from nps_followup.domain.simulation import StoredResponse
from nps_followup.handlers.ports import BatchEffects


@dataclass
class BatchWrites:
    """What one batch changes, by kind; `flush` writes each kind in one statement (none for a
    kind the batch left empty; the actions, timeline entries and last messages it adds in one
    statement together) and queues the events, in the order they were recorded, in the same
    transaction."""

    now: datetime
    #: The escalation level each case of the batch climbed to (a step of the ladder), by case
    #: id: the one lifecycle field a batch changes, written alone.
    levels: dict[uuid.UUID, int] = field(default_factory=dict)
    #: The customer's latest score on existing cases (a later answer), by case id.
    latest_scores: dict[uuid.UUID, Case] = field(default_factory=dict)
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = field(default_factory=list)
    #: Actions requested now (staff notices, ticket raises), by case id.
    actions: list[tuple[uuid.UUID, Action]] = field(default_factory=list)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)
    priorities: dict[uuid.UUID, str] = field(default_factory=dict)
    #: Scheduled actions whose time came: (action, state, reason).
    states: list[tuple[uuid.UUID, ActionState, str | None]] = field(default_factory=list)
    #: Customers messaged now (for the frequency cap).
    messaged: set[str] = field(default_factory=set)
    #: Re-surveys requested now (`resurvey_after`), and customers' first answers to them.
    resurveys: list[ResurveyRequest] = field(default_factory=list)
    resurvey_answers: list[ResurveyAnswer] = field(default_factory=list)
    #: (code, customer, case) of every referral link sent.
    referral_codes: list[tuple[str, str, uuid.UUID]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: The compact record of each scored response the batch handled (`policy simulate`).
    scored: list[StoredResponse] = field(default_factory=list)

    def request(
        self,
        case_id: uuid.UUID,
        action: Action,
        *,
        recipient: str | None = None,
        priority: str | None = None,
    ) -> None:
        """Record an action requested now (a staff notice names its `recipient`)."""
        self.actions.append((case_id, action))
        if recipient is not None:
            self.recipients[action.action_id] = recipient
        if priority is not None:
            self.priorities[action.action_id] = priority

    def take_opened(self, opening: "BatchWrites", inserted: set[uuid.UUID]) -> None:
        """Add what opening a batch of new cases recorded in `opening`, for the cases of
        `inserted` only, field by field as `TAKEN` says. Its actions (and their states,
        recipients and priorities) are not taken: they were inserted with the cases."""
        for name, case_of in TAKEN.items():
            if case_of is None:
                continue
            mine, theirs = getattr(self, name), getattr(opening, name)
            if isinstance(theirs, dict):
                mine.update({k: v for k, v in theirs.items() if case_of(k) in inserted})
            else:
                mine += [entry for entry in theirs if case_of(entry) in inserted]
        # A customer messaged by a case of the batch that another transaction opened first
        # is not messaged by this one.
        self.messaged |= {
            e.customer.id
            for e in opening.events
            if isinstance(e, SendEmail | SendSms) and e.case_id in inserted
        } & opening.messaged

    async def flush(self, repo: BatchEffects) -> None:
        await repo.set_action_states(self.states, at=self.now)
        await repo.set_escalation_levels(self.levels)
        await repo.record_latest_scores(list(self.latest_scores.values()))
        await repo.add_records(
            actions=self.actions,
            priority=self.priorities,
            recipient=self.recipients,
            timeline=self.timeline,
            messaged=self.messaged,
            at=self.now,
            scored=self.scored,
        )
        await repo.record_resurveys(self.resurveys)
        await repo.record_resurvey_answers(self.resurvey_answers)
        await repo.issue_referral_codes(self.referral_codes, at=self.now)
        await repo.publish_later(self.events, now=self.now)


def _same(case_id: Any) -> Any:
    return case_id


#: How `take_opened` keeps what opening recorded: for each field of `BatchWrites`, the case
#: an entry belongs to (for a dict, of its key), or `None` for a field it does not take
#: (inserted with the cases, not per case, or derived: `messaged`). Every field must be here:
#: a field added to `BatchWrites` without saying how opening's entries are taken would be
#: dropped for new cases without a word (the check below refuses to import instead).
TAKEN: dict[str, Callable[[Any], Any] | None] = {
    "now": None,
    "levels": _same,
    "latest_scores": _same,
    "timeline": lambda entry: entry[0],
    "actions": None,
    "recipients": None,
    "priorities": None,
    "states": None,
    "messaged": None,
    "resurveys": lambda request: request.case_id,
    "resurvey_answers": lambda answer: answer.case_id,
    "referral_codes": lambda code: code[2],
    "events": lambda event: getattr(event, "case_id", None),
    "scored": None,
}
if set(TAKEN) != {f.name for f in fields(BatchWrites)}:
    raise TypeError(
        "handlers.writes.TAKEN must say how take_opened takes each field of BatchWrites: "
        f"{sorted(set(TAKEN) ^ {f.name for f in fields(BatchWrites)})}"
    )
