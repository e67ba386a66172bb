"""Recording a referral against a promoter's code: on the promoter's case, once per id."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from nps_events import Actor
from nps_followup.domain.cases import TimelineEntry
from nps_followup.domain.referrals import CODE, Referral
from nps_followup.handlers.common import timeline_entry


class ReferralRecording(Protocol):
    """What recording a referral reads and writes."""

    async def referral(self, referral_id: str) -> Referral | None:
        """The referral recorded with this id, if any."""
        ...

    async def referral_code_owner(self, code: str) -> tuple[str, uuid.UUID] | None:
        """(customer, case) of a code followup sent; None for any other."""
        ...

    async def add_referral(self, referral: Referral) -> bool:
        """Record it; False if its id is already recorded."""
        ...

    async def add_timelines(self, entries: list[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Timeline entries of any number of cases."""
        ...


class UnknownReferralCode(LookupError):  # noqa: N818 - named for what it is
    """No referral link followup sent carries this code."""

    def __init__(self, code: str) -> None:
        super().__init__(f"No referral link carries the code {code!r}.")
        self.code = code


class ReferralIdReused(ValueError):  # noqa: N818 - named for what it is
    """The id names a referral already recorded with another code, time or reference."""

    def __init__(self, existing: Referral) -> None:
        super().__init__(
            f"Referral {existing.referral_id!r} is already recorded, with other details "
            f"(code {existing.code}, referred at {existing.referred_at.isoformat()})."
        )
        self.existing = existing


@dataclass(frozen=True, slots=True)
class RecordedReferral:
    referral: Referral
    #: False when this id was recorded before (a retry): nothing was counted again.
    new: bool


async def record_referral(
    repo: ReferralRecording,
    *,
    referral_id: str,
    code: str,
    referred_at: datetime,
    reference: str | None,
    actor: Actor,
    now: datetime,
) -> RecordedReferral:
    """Record a referral on the case of the promoter whose code it carries, with a timeline
    entry; a retry with the same id (and the same details) records nothing more. Raises
    `UnknownReferralCode` for a code followup never sent, `ReferralIdReused` for an id
    recorded with other details."""
    existing = await repo.referral(referral_id)
    if existing is None:
        owner = await repo.referral_code_owner(code) if CODE.match(code) else None
        if owner is None:
            raise UnknownReferralCode(code)
        customer_id, case_id = owner
        referral = Referral(
            referral_id=referral_id,
            code=code,
            customer_id=customer_id,
            case_id=case_id,
            referred_at=referred_at.astimezone(UTC),
            reference=reference,
            recorded_at=now,
        )
        if await repo.add_referral(referral):
            entry = timeline_entry(
                case_id,
                "referral_recorded",
                now,
                origin=f"referral:{referral_id}",
                actor=actor,
                referral_id=referral_id,
                code=code,
                referred_at=referred_at.isoformat(),
                reference=reference,
            )
            await repo.add_timelines([(case_id, entry)])
            return RecordedReferral(referral, new=True)
        existing = await repo.referral(referral_id)  # a concurrent retry recorded it first
        assert existing is not None  # noqa: S101 - it conflicted, so it is there
    if not existing.same_as(code, referred_at, reference):
        raise ReferralIdReused(existing)
    return RecordedReferral(existing, new=False)
