"""The SQL of referrals: the codes followup sent, and the referrals recorded against them."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.domain.referrals import Referral

Period = Literal["day", "week", "month"]


class ReferralStore:
    """Referral codes and referrals, in the repository's unit of work (mixed into it)."""

    session: AsyncSession

    async def issue_referral_codes(
        self, codes: Sequence[tuple[str, str, uuid.UUID]], *, at: datetime
    ) -> None:
        """Remember (code, customer, case) of referral links sent, in one statement: a code
        sent again points at the latest case that sent it."""
        latest = {code: (customer, case) for code, customer, case in codes}
        if not latest:
            return
        statement = insert(tables.referral_codes)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["code"],
                set_={
                    "case_id": statement.excluded.case_id,
                    "issued_at": statement.excluded.issued_at,
                },
            ),
            [
                {"code": code, "customer_id": customer, "case_id": case, "issued_at": at}
                for code, (customer, case) in latest.items()
            ],
        )

    async def referral_code_owner(self, code: str) -> tuple[str, uuid.UUID] | None:
        """(customer, case) of a code followup sent; None for a code it never sent."""
        c = tables.referral_codes.c
        row = (
            await self.session.execute(
                select(c.customer_id, c.case_id).where(c.code == code).with_for_update()
            )
        ).first()
        return None if row is None else (row.customer_id, row.case_id)

    async def referral(self, referral_id: str) -> Referral | None:
        r = tables.referrals.c
        row = (
            await self.session.execute(select(tables.referrals).where(r.referral_id == referral_id))
        ).first()
        if row is None:
            return None
        return Referral(
            referral_id=row.referral_id,
            code=row.code,
            customer_id=row.customer_id,
            case_id=row.case_id,
            referred_at=row.referred_at,
            reference=row.reference,
            recorded_at=row.recorded_at,
        )

    async def add_referral(self, referral: Referral) -> bool:
        """Record `referral`; False if one with its id is already recorded."""
        result = await self.session.execute(
            insert(tables.referrals)
            .values(
                referral_id=referral.referral_id,
                code=referral.code,
                customer_id=referral.customer_id,
                case_id=referral.case_id,
                referred_at=referral.referred_at,
                reference=referral.reference,
                recorded_at=referral.recorded_at,
            )
            .on_conflict_do_nothing(index_elements=["referral_id"])
            .returning(tables.referrals.c.referral_id)
        )
        return result.first() is not None

    async def referrals_per_period(
        self, period: Period, *, start: datetime | None, end: datetime | None
    ) -> list[tuple[datetime, int, int]]:
        """(period's first instant in UTC, referrals, promoters who referred) per `period`
        of `referred_at`, oldest first; only periods with referrals."""
        r = tables.referrals.c
        bucket = func.date_trunc(period, r.referred_at, "UTC").label("period")
        query = select(bucket, func.count(), func.count(r.customer_id.distinct())).group_by(bucket)
        if start is not None:
            query = query.where(r.referred_at >= start)
        if end is not None:
            query = query.where(r.referred_at < end)
        rows = (await self.session.execute(query.order_by(bucket))).all()
        return [(row[0], int(row[1]), int(row[2])) for row in rows]
