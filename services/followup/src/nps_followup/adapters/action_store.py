"""Followup's SQL for the actions of cases: requested, dispatched, and their outcomes."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import columns, row_columns, unnest_insert, unnest_update
from nps_followup.domain.cases import Action, ActionOutcome, ActionState
from nps_kit.db import driver_fetch

ACTION_COLUMNS = (
    "action_id",
    "case_id",
    "channel",
    "template",
    "priority",
    "recipient",
    "exempt_from_cap",
    "state",
    "reason",
    "scheduled_for",
    "requested_at",
    "updated_at",
)
_INSERT_ACTIONS = unnest_insert(tables.actions, ACTION_COLUMNS)
_SET_STATES = unnest_update(
    tables.actions,
    "action_id",
    ("state", "reason"),
    also={"updated_at": "CAST(:at AS timestamptz)", "requested_at": "CAST(:at AS timestamptz)"},
)

_OUTCOME_COLUMNS = ("action_id", "state", "provider_message_id", "reason")
_RECORD_OUTCOMES = unnest_update(
    tables.actions,
    "action_id",
    _OUTCOME_COLUMNS[1:],
    also={"updated_at": "CAST(:at AS timestamptz)"},
    returning="t.action_id",
)

_ACTIONS_BY_ID = text(
    "SELECT action_id, case_id, channel, template, priority, state, exempt_from_cap "
    "FROM followup.actions WHERE action_id = ANY(CAST(:ids AS uuid[]))"
)
#: A ticket an action still stands for: planned, sent, or not known to have failed.
_TICKET_STATES = (ActionState.PLANNED, ActionState.SENT, ActionState.UNKNOWN)
_TICKETS_OF = text(
    "SELECT case_id, action_id FROM followup.actions "  # noqa: S608 - our constants
    "WHERE case_id = ANY(CAST(:ids AS uuid[])) AND channel = 'ticket' AND template IS NULL "
    f"AND state IN ({', '.join(repr(s.value) for s in _TICKET_STATES)})"
)


@dataclass(frozen=True, slots=True)
class ActionRow:
    """An action as the sweeper needs it to dispatch."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    channel: str
    template: str | None
    priority: str | None
    state: ActionState
    exempt_from_cap: bool


async def insert_actions(
    session: AsyncSession,
    actions: Sequence[tuple[uuid.UUID, Action]],
    *,
    exempt: set[uuid.UUID],
    priority: dict[uuid.UUID, str] | None = None,
    recipient: dict[uuid.UUID, str] | None = None,
) -> None:
    """Actions of any number of cases, in one statement."""
    if not actions:
        return
    await session.execute(
        _INSERT_ACTIONS,
        action_columns(actions, exempt=exempt, priority=priority, recipient=recipient),
    )


def action_columns(
    actions: Sequence[tuple[uuid.UUID, Action]],
    *,
    exempt: set[uuid.UUID],
    priority: dict[uuid.UUID, str] | None = None,
    recipient: dict[uuid.UUID, str] | None = None,
    prefix: str = "",
) -> dict[str, list[Any]]:
    """(case id, action) pairs as the parameters of an insert of `ACTION_COLUMNS`."""
    priority, recipient = priority or {}, recipient or {}
    rows = [
        (
            a.action_id,
            case_id,
            a.channel,
            a.template,
            priority.get(a.action_id),
            recipient.get(a.action_id),
            a.action_id in exempt,
            a.state.value,
            a.reason,
            a.scheduled_for,
            a.requested_at,
            a.updated_at,
        )
        for case_id, a in actions
    ]
    return row_columns(tables.actions, ACTION_COLUMNS, rows, prefix=prefix)


class ActionStore:
    """The actions of cases: what the sweeper dispatches, notify's outcomes, and the
    helpdesk tickets a case asked for."""

    session: AsyncSession

    async def add_actions_of(
        self,
        actions: Sequence[tuple[uuid.UUID, Action]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        """Actions of any number of cases, in one statement."""
        await insert_actions(
            self.session, actions, exempt=exempt, priority=priority, recipient=recipient
        )

    async def actions_by_id(self, action_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ActionRow]:
        ids = list(set(action_ids))
        if not ids:
            return {}
        rows = await driver_fetch(self.session, _ACTIONS_BY_ID, {"ids": ids})
        return {
            r["action_id"]: ActionRow(
                r["action_id"],
                r["case_id"],
                r["channel"],
                r["template"],
                r["priority"],
                ActionState(r["state"]),
                r["exempt_from_cap"],
            )
            for r in rows
        }

    async def tickets_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The action that asked for each case's helpdesk ticket, where one was requested."""
        ids = list(set(case_ids))
        if not ids:
            return {}
        rows = await driver_fetch(self.session, _TICKETS_OF, {"ids": ids})
        return {row[0]: row[1] for row in rows}

    async def set_action_states(
        self, states: Sequence[tuple[uuid.UUID, ActionState, str | None]], *, at: datetime
    ) -> None:
        """(action, state, reason) for any number of actions, in one statement."""
        if not states:
            return
        rows = [
            {"action_id": action_id, "state": state.value, "reason": reason}
            for action_id, state, reason in states
        ]
        await driver_fetch(
            self.session,
            _SET_STATES,
            {
                **columns(tables.actions, ("action_id", "state", "reason"), rows, key="action_id"),
                "at": at,
            },
        )

    async def record_action_outcomes(
        self, outcomes: Sequence[ActionOutcome], *, at: datetime
    ) -> set[uuid.UUID]:
        """Record what happened to any number of actions, in one statement (an update per
        outcome cost a round trip each: 500 statements for a batch of 500 results); of two
        outcomes of one action, the later stands, as it did row by row. Returns the ids of
        the actions that exist."""
        if not outcomes:
            return set()
        rows = [
            {
                "action_id": o.action_id,
                "state": o.state.value,
                "provider_message_id": o.provider_message_id,
                "reason": o.reason,
            }
            for o in outcomes
        ]
        found = await driver_fetch(
            self.session,
            _RECORD_OUTCOMES,
            {**columns(tables.actions, _OUTCOME_COLUMNS, rows, key="action_id"), "at": at},
        )
        return {row[0] for row in found}
