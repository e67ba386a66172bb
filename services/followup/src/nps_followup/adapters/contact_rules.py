"""Followup's SQL for the contact rules: the do-not-contact list and customers' last messages."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import any_of
from nps_followup.domain.contact_rules import DoNotContactEntry


class ContactRuleStore:
    """What the contact rules read and keep: the do-not-contact list and when each customer
    was last messaged (for the frequency cap)."""

    session: AsyncSession

    async def opted_out(self, customer_ids: Iterable[str]) -> dict[str, set[str]]:
        ids = list(set(customer_ids))
        found: dict[str, set[str]] = defaultdict(set)
        if ids:
            d = tables.do_not_contact
            rows = await self.session.execute(
                select(d.c.customer_id, d.c.scope).where(any_of(d.c.customer_id, ids))
            )
            for row in rows:
                found[row.customer_id].add(row.scope)
        return found

    async def all_opt_outs(self) -> dict[str, set[str]]:
        """The whole do-not-contact list: each customer's scopes."""
        d = tables.do_not_contact
        found: dict[str, set[str]] = defaultdict(set)
        for row in await self.session.execute(select(d.c.customer_id, d.c.scope)):
            found[row.customer_id].add(row.scope)
        return found

    async def opt_outs_of(self, customer_id: str) -> list[DoNotContactEntry]:
        d = tables.do_not_contact
        rows = await self.session.execute(
            select(d).where(d.c.customer_id == customer_id).order_by(d.c.scope)
        )
        return [DoNotContactEntry(r.scope, r.source, r.reason, r.at) for r in rows]

    async def add_opt_out(
        self, customer_id: str, scope: str, *, source: str, reason: str | None, at: datetime
    ) -> None:
        await self.session.execute(
            insert(tables.do_not_contact)
            .values(customer_id=customer_id, scope=scope, source=source, reason=reason, at=at)
            .on_conflict_do_nothing()
        )

    async def remove_opt_out(self, customer_id: str, scope: str) -> bool:
        d = tables.do_not_contact
        result = await self.session.execute(
            d.delete()
            .where(and_(d.c.customer_id == customer_id, d.c.scope == scope))
            .returning(d.c.scope)
        )
        return result.first() is not None

    async def last_messages(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        ids = list(set(customer_ids))
        if not ids:
            return {}
        m = tables.last_messages
        rows = await self.session.execute(select(m).where(any_of(m.c.customer_id, ids)))
        return {r.customer_id: r.at for r in rows}

    async def set_last_messages(self, customer_ids: Iterable[str], at: datetime) -> None:
        ids = sorted(set(customer_ids))
        if not ids:
            return
        m = tables.last_messages
        statement = insert(m)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[m.c.customer_id],
                set_={"at": func.greatest(m.c.at, statement.excluded.at)},
            ),
            [{"customer_id": i, "at": at} for i in ids],
        )
