"""What each group of use cases needs of followup's storage: narrow ports, so that a use case
can be tested against an in-memory fake (tests/support/followup_fakes.py) and the SQL against
PostgreSQL. `adapters.repository.FollowupRepository` implements them all; every method runs
inside the caller's unit of work."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from nps_events import Event, Segment
from nps_followup.adapters.repository import ActionRow, DueTimer
from nps_followup.domain.cases import (
    Action,
    ActionOutcome,
    ActionState,
    Case,
    PlannedTimer,
    SetAside,
    TimelineEntry,
)
from nps_followup.domain.contact_rules import ContactHistory, DoNotContactEntry
from nps_followup.domain.resurvey import ResurveyAnswer, ResurveyRequest
from nps_followup.domain.simulation import StoredResponse


class Inbox(Protocol):
    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        ...


class Outbox(Protocol):
    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        """Queue `events` for the relay, in the same transaction as the state they describe."""
        ...


class CaseLifecycle(Outbox, Protocol):
    """What people's transitions of a case need: assign, contact, resolve, close, reopen."""

    async def get_case(self, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
        """The case with its actions and timeline; `for_update` locks it."""
        ...

    async def active_case_of(self, customer_id: str) -> Case | None:
        """The case a person still works for this customer, locked for update."""
        ...

    async def save_cases(self, cases: Sequence[Case]) -> None:
        """Write the cases' lifecycle fields (the response fields never change here)."""
        ...

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Record (case id, entry) pairs on the cases' timelines (an entry already recorded is
        kept)."""
        ...

    async def add_actions_of(
        self,
        actions: Sequence[tuple[uuid.UUID, Action]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        """Record (case id, action) pairs as requested (staff notices name their
        `recipient`)."""
        ...

    async def reserve_turns(self, team: str, count: int) -> int:
        """Reserve `count` consecutive round-robin turns of the team (0, 1, 2…, shared by
        every replica); return the first."""
        ...

    async def add_timers(self, case_id: uuid.UUID, timers: Sequence[PlannedTimer]) -> None:
        """Pending timers for an existing case (a reopened case's new ladder)."""
        ...

    async def cancel_ladder(self, case_id: uuid.UUID, now: datetime) -> None:
        """A person reached the customer, or resolved the case: no reminder or escalation."""
        ...

    async def cancel_resurvey(self, case_id: uuid.UUID, now: datetime) -> datetime | None:
        """Cancel the case's pending re-survey (it was reopened); return when it would have
        been asked, or None if none was pending."""
        ...


class BatchEffects(Outbox, Protocol):
    """What flushing a batch's writes (`handlers.writes.BatchWrites`) needs: each kind of
    write for any number of cases in one statement."""

    async def set_action_states(
        self, states: Sequence[tuple[uuid.UUID, ActionState, str | None]], *, at: datetime
    ) -> None:
        """(action, state, reason) for any number of actions."""
        ...

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
        """What a batch adds, together: the (case id, action) pairs requested now (staff
        notices name their `recipient`), the timeline entries (in order; an entry recorded
        already is kept), the customers messaged at `at`, and the compact record of each scored
        response it handled (its latest revision; what `policy simulate` replays)."""
        ...

    async def set_escalation_levels(self, levels: Mapping[uuid.UUID, int]) -> None:
        """Each case's escalation level (by case id), and no other field of the case."""
        ...

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        """The customer's latest score on each case (and whether it means recovery)."""
        ...

    async def record_resurveys(self, requested: Sequence[ResurveyRequest]) -> None:
        """The re-surveys just requested, each awaiting the customer's answer."""
        ...

    async def record_resurvey_answers(self, answers: Sequence[ResurveyAnswer]) -> None:
        """The customers' first answers to their re-surveys."""
        ...

    async def issue_referral_codes(
        self, codes: Sequence[tuple[str, str, uuid.UUID]], *, at: datetime
    ) -> None:
        """Remember (code, customer, case) of referral links sent, so a recorded referral finds
        its promoter: the latest case to send a code is the one it is recorded on."""
        ...


class TimerEffects(BatchEffects, Protocol):
    """What firing due timers reads, besides what it writes through `BatchEffects`."""

    async def contact_history(self, customer_ids: Iterable[str]) -> ContactHistory:
        """The channels (or `all`) each customer opted out of, and when each was last
        messaged (for the frequency cap)."""
        ...

    async def tickets_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The action that asked for each case's helpdesk ticket, where one was requested."""
        ...

    async def latest_answers(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        """When each customer last answered a survey live (not back-filled history)."""
        ...


class TimerSweep(TimerEffects, Protocol):
    """What the sweeper needs to claim due timers and their cases."""

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Pending timers due at `now`, locked so that another sweeper skips them, and
        recorded as fired (in the caller's transaction: a rollback leaves them pending)."""
        ...

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Cases (without actions), locked for update in id order."""
        ...

    async def actions_by_id(self, action_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ActionRow]:
        """The actions as dispatching needs them."""
        ...


class CaseOpening(Inbox, TimerEffects, Protocol):
    """What opening cases from a batch of scored responses needs (it fires the timers due at
    once itself)."""

    async def cases_of_batch(
        self, response_ids: Iterable[uuid.UUID], customer_ids: Iterable[str]
    ) -> tuple[dict[uuid.UUID, uuid.UUID], dict[str, Case]]:
        """The case id of each response that has a case (by response id), and the case a
        person still works for each customer (by customer id), those locked for update: what
        a batch reads before it acts, in one statement."""
        ...

    async def update_case_response(
        self,
        case_id: uuid.UUID,
        *,
        score: int,
        segment: Segment,
        comment: str | None,
        themes: tuple[str, ...] = (),
    ) -> None:
        """The customer updated the response the case is about."""
        ...

    async def set_aside(self, responses: Sequence[SetAside]) -> None:
        """Record responses not acted on (back-fill, older than the window), with why."""
        ...

    async def latest_worked_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """Each customer's most recent case that a person worked (not automated)."""
        ...

    async def awaiting_resurvey_answer(
        self, case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, datetime]:
        """When a re-survey was requested, for each of these cases not answered yet."""
        ...

    async def reserve_turns(self, team: str, count: int) -> int:
        """Reserve `count` consecutive round-robin turns of the team (0, 1, 2…, shared by
        every replica); return the first."""
        ...

    async def add_cases(
        self,
        cases: Sequence[Case],
        timers: Sequence[tuple[uuid.UUID, PlannedTimer]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str],
        requested: Sequence[tuple[uuid.UUID, Action]] = (),
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> set[uuid.UUID]:
        """Insert the cases with their actions (each in its state), the (case id, action)
        pairs `requested` for them now (staff notices name their `recipient`) and their
        pending timers (a timer the caller fires in this transaction is not among them: it
        would be written only to be done); return the ids inserted. A case that
        exists already is left as it was, and gets none of these actions and timers."""
        ...


class Results(Inbox, Protocol):
    """What recording action outcomes and helpdesk ticket changes needs."""

    async def record_action_outcomes(
        self, outcomes: Sequence[ActionOutcome], *, at: datetime
    ) -> set[uuid.UUID]:
        """Record what happened to any number of actions, in order (of two outcomes of one
        action, the later stands); return the ids of the actions that exist."""
        ...

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Cases (without actions), locked for update in id order."""
        ...

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Timeline entries of any number of cases."""
        ...


class OptOuts(Inbox, Protocol):
    async def add_opt_out(
        self, customer_id: str, scope: str, *, source: str, reason: str | None, at: datetime
    ) -> None:
        """Put the customer on the do-not-contact list for `scope` (a channel, or `all`); an
        entry already there for that scope is kept as it was."""
        ...


class DoNotContactList(Protocol):
    """What people's reading and changing of the do-not-contact list needs."""

    async def opt_outs_of(self, customer_id: str) -> list[DoNotContactEntry]:
        """The customer's entries, in scope order."""
        ...

    async def add_opt_out(
        self, customer_id: str, scope: str, *, source: str, reason: str | None, at: datetime
    ) -> None:
        """Put the customer on the list for `scope`; an entry already there is kept."""
        ...

    async def remove_opt_out(self, customer_id: str, scope: str) -> bool:
        """Take the customer off the list for `scope`; False if they were not on it."""
        ...


class StoredResponses(Protocol):
    """What a replay of the policy (`policy simulate`) reads, in a transaction that can write
    nothing."""

    async def read_only(self) -> None:
        """Refuse every write for the rest of the transaction."""
        ...

    async def scored_between(self, start: datetime, end: datetime) -> list[StoredResponse]:
        """The stored responses answered in [start, end), in the order they were received."""
        ...

    async def all_opt_outs(self) -> dict[str, set[str]]:
        """The do-not-contact list: each customer's scopes."""
        ...
