"""Followup's SQL for the contact rules: the do-not-contact list and customers' last messages."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, and_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import unnest_insert
from nps_followup.domain.contact_rules import ContactHistory, DoNotContactEntry
from nps_kit.db import driver_fetch

#: Opt-outs have a scope, last messages a time: one row per opt-out or last message. The
#: customers are a set joined to each table (`unnest`), not `customer_id = ANY(:ids)`: the
#: generic plan of that prepared statement read `last_messages` whole while it was small and
#: compared each row with every customer of the batch, one by one (a parameter's array is not
#: hashed): 15 ms for a batch of 500 at 3,200 rows, and growing with the table (EXPLAIN ANALYZE,
#: docs/performance.md, issue #20's seventh session). Joined, each customer is looked up in
#: the primary key, or the tables hashed, whatever the plan.
_CONTACT_HISTORY = text(
    "SELECT d.customer_id, d.scope, NULL::timestamptz AS at "
    "FROM unnest(CAST(:ids AS text[])) AS k(id) "
    "JOIN followup.do_not_contact d ON d.customer_id = k.id "
    "UNION ALL SELECT m.customer_id, NULL, m.at FROM unnest(CAST(:ids AS text[])) AS k(id) "
    "JOIN followup.last_messages m ON m.customer_id = k.id"
)


def insert_last_messages(prefix: str = "") -> TextClause:
    """When customers were last messaged: a time never moves back (a slower replica's batch).
    Parameters: `last_message_columns`."""
    return unnest_insert(
        tables.last_messages,
        ("customer_id", "at"),
        prefix=prefix,
        on_conflict="(customer_id) DO UPDATE SET "
        "at = greatest(followup.last_messages.at, EXCLUDED.at)",
    )


def last_message_columns(
    customer_ids: Iterable[str], at: datetime, prefix: str = ""
) -> dict[str, list[Any]]:
    """In customer order, so that two batches lock the rows in the same order."""
    ids = sorted(set(customer_ids))
    return {f"{prefix}customer_id": ids, f"{prefix}at": [at] * len(ids)}


class ContactRuleStore:
    """What the contact rules read and keep: the do-not-contact list and when each customer
    was last messaged (for the frequency cap)."""

    session: AsyncSession

    async def contact_history(self, customer_ids: Iterable[str]) -> ContactHistory:
        """Both tables in one statement (a round trip fewer for every batch that messages)."""
        ids = list(set(customer_ids))
        opted_out: dict[str, set[str]] = defaultdict(set)
        last: dict[str, datetime] = {}
        if ids:
            for customer_id, scope, at in await driver_fetch(
                self.session, _CONTACT_HISTORY, {"ids": ids}
            ):
                if scope is not None:
                    opted_out[customer_id].add(scope)
                else:
                    last[customer_id] = at
        return ContactHistory(opted_out, last)

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

    async def set_last_messages(self, customer_ids: Iterable[str], at: datetime) -> None:
        """One statement for any number of customers (an executemany ran it once per
        customer)."""
        params = last_message_columns(customer_ids, at)
        if params["customer_id"]:
            await self.session.execute(insert_last_messages(), params)
