"""Followup's SQL for writing cases: opening them, their lifecycle, their timelines."""

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.adapters.action_store import insert_actions
from nps_followup.adapters.case_rows import case_from_row, case_values, with_actions
from nps_followup.domain.cases import Case, CaseStatus, PlannedTimer, TimelineEntry


class CaseStore:
    """Cases and their timelines as the use cases change them: opened (with their actions
    and timers), locked and read back, their lifecycle and latest score saved."""

    session: AsyncSession

    async def get_case(self, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
        query = select(tables.cases).where(tables.cases.c.case_id == case_id)
        if for_update:
            query = query.with_for_update()
        rows = (await self.session.execute(query)).all()
        cases = await with_actions(self.session, rows, timeline=True)
        return cases[0] if cases else None

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Cases (without actions), locked for update in id order (no deadlock between
        sweepers)."""
        ids = sorted(set(case_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases)
            .where(tables.cases.c.case_id.in_(ids))
            .order_by(tables.cases.c.case_id)
            .with_for_update()
        )
        return {row.case_id: case_from_row(row) for row in rows}

    async def active_case_of(self, customer_id: str) -> Case | None:
        """The case a person still works for this customer, locked for update."""
        row = (
            await self.session.execute(
                select(tables.cases)
                .where(
                    tables.cases.c.customer_id == customer_id,
                    tables.cases.c.status.in_(tables.ACTIVE),
                )
                .order_by(tables.cases.c.opened_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        return case_from_row(row) if row is not None else None

    async def active_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """The case a person still works for each of these customers, locked for update."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases)
            .where(
                tables.cases.c.customer_id.in_(ids),
                tables.cases.c.status.in_(tables.ACTIVE),
            )
            .order_by(tables.cases.c.opened_at)
            .with_for_update()
        )
        return {row.customer_id: case_from_row(row) for row in rows}

    async def latest_worked_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """Each customer's most recent case that a person worked (not automated)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        c = tables.cases
        rows = await self.session.execute(
            select(c)
            .ext(distinct_on(c.c.customer_id))
            .where(c.c.customer_id.in_(ids), c.c.status != CaseStatus.AUTOMATED.value)
            .order_by(c.c.customer_id, c.c.opened_at.desc())
        )
        return {row.customer_id: case_from_row(row) for row in rows}

    async def add_cases(
        self,
        cases: Sequence[Case],
        timers: Sequence[tuple[uuid.UUID, PlannedTimer]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str],
        fired: set[uuid.UUID],
    ) -> set[uuid.UUID]:
        """Insert the cases with their actions and timers (`fired`: timers the caller fires in
        this transaction); return the ids of the cases inserted (a case that existed already
        is left as it was)."""
        if not cases:
            return set()
        # executemany ("insertmanyvalues" batches it): a multi-VALUES statement built in Python
        # would spend more time compiling its bind parameters than PostgreSQL inserting.
        inserted = set(
            (
                await self.session.execute(
                    insert(tables.cases).on_conflict_do_nothing().returning(tables.cases.c.case_id),
                    [case_values(c) for c in cases],
                )
            ).scalars()
        )
        await insert_actions(
            self.session,
            [(c.case_id, a) for c in cases if c.case_id in inserted for a in c.actions],
            exempt=exempt,
            priority=priority,
        )
        rows = [
            {
                "timer_id": t.timer_id,
                "case_id": case_id,
                "kind": t.kind.value,
                "action_id": t.action_id,
                "fire_at": t.fire_at,
                "state": "fired" if t.timer_id in fired else "pending",
                "fired_at": t.fire_at if t.timer_id in fired else None,
            }
            for case_id, t in timers
            if case_id in inserted
        ]
        if rows:
            await self.session.execute(insert(tables.timers).on_conflict_do_nothing(), rows)
        return inserted

    async def save_cases(self, cases: Sequence[Case]) -> None:
        """Write the lifecycle fields of any number of cases (not the latest score: see
        `record_latest_scores`), in one executemany."""
        if not cases:
            return
        c = tables.cases
        await self.session.execute(
            update(c)
            .where(c.c.case_id == bindparam("b_case_id"))
            .values(
                status=bindparam("b_status"),
                owner=bindparam("b_owner"),
                escalation_level=bindparam("b_level"),
                first_contact_at=bindparam("b_first_contact_at"),
                resolved_at=bindparam("b_resolved_at"),
                closed_at=bindparam("b_closed_at"),
                root_cause=bindparam("b_root_cause"),
                due_at=bindparam("b_due_at"),
                remind_at=bindparam("b_remind_at"),
                second_level_at=bindparam("b_second_level_at"),
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_case_id": case.case_id,
                    "b_status": case.status.value,
                    "b_owner": case.owner,
                    "b_level": case.escalation_level,
                    "b_first_contact_at": case.first_contact_at,
                    "b_resolved_at": case.resolved_at,
                    "b_closed_at": case.closed_at,
                    "b_root_cause": case.root_cause,
                    "b_due_at": case.due_at,
                    "b_remind_at": case.remind_at,
                    "b_second_level_at": case.second_level_at,
                }
                for case in cases
            ],
        )

    async def update_case_response(
        self,
        case_id: uuid.UUID,
        *,
        score: int,
        segment: Segment,
        comment: str | None,
        themes: tuple[str, ...] = (),
    ) -> None:
        """The customer updated the response the case is about (a late comment, a new score)."""
        await self.session.execute(
            update(tables.cases)
            .where(tables.cases.c.case_id == case_id)
            .values(score=score, segment=segment.value, comment=comment, themes=list(themes))
        )

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        """The customer's latest score on each case (and whether it means recovery). Only these
        columns: a person working the case at the same time loses nothing."""
        if not cases:
            return
        c = tables.cases
        await self.session.execute(
            update(c)
            .where(c.c.case_id == bindparam("b_case_id"))
            .values(latest_score=bindparam("b_score"), recovered=bindparam("b_recovered"))
            .execution_options(synchronize_session=False),
            [
                {"b_case_id": x.case_id, "b_score": x.latest_score, "b_recovered": x.recovered}
                for x in cases
            ],
        )

    async def reserve_turns(self, team: str, count: int) -> int:
        """Reserve `count` consecutive round-robin turns of the team (0, 1, 2…), counted in
        the database so that replicas share them; return the first."""
        t = tables.team_turns
        last = await self.session.scalar(
            insert(t)
            .values(team=team, turn=count - 1)
            .on_conflict_do_update(index_elements=[t.c.team], set_={"turn": t.c.turn + count})
            .returning(t.c.turn)
        )
        return int(last or 0) - count + 1

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Timeline entries of any number of cases, in one statement."""
        if not entries:
            return
        await self.session.execute(
            insert(tables.timeline).on_conflict_do_nothing(),
            [
                {
                    "entry_id": e.entry_id,
                    "case_id": case_id,
                    "kind": e.kind,
                    "at": e.at,
                    "actor": e.actor.label() if e.actor else None,
                    "actor_kind": e.actor.kind.value if e.actor else None,
                    "actor_id": e.actor.id if e.actor else None,
                    "actor_rule": e.actor.rule if e.actor else None,
                    "details": e.details,
                }
                for case_id, e in entries
            ],
        )
