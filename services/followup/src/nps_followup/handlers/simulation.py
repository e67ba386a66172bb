"""`policy simulate`: read the stored responses of a period in a read-only transaction, then
replay them through the proposed policy and the policy in force: nothing is written, nothing
is sent."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from nps_followup.domain.simulation import Outcome, StoredResponse, simulate
from nps_followup.handlers.common import PolicyInForce
from nps_followup.handlers.ports import StoredResponses


@dataclass(frozen=True, slots=True)
class Period:
    """The stored responses answered from `start` to `end` (UTC days, both included), and the
    do-not-contact list."""

    start: date
    end: date
    responses: list[StoredResponse]
    opted_out: dict[str, set[str]]


@dataclass(frozen=True, slots=True)
class Simulation:
    """The period replayed, and what each policy would have done."""

    start: date
    end: date
    as_answered: bool
    proposed: Outcome
    in_force: Outcome


async def read_period(repo: StoredResponses, *, start: date, end: date) -> Period:
    """The responses answered from `start` to `end`, read in a transaction that refuses
    every write."""
    await repo.read_only()
    responses = await repo.scored_between(_midnight(start), _midnight(end + timedelta(days=1)))
    return Period(start, end, responses, await repo.all_opt_outs())


async def simulate_policy(
    period: Period,
    *,
    proposed: PolicyInForce,
    in_force: PolicyInForce,
    as_answered: bool = False,
) -> Simulation:
    """What `proposed` and `in_force` would each have done with the period's responses. Both
    replays run here, one after the other: two processes side by side were slower on this
    shared two-core machine (docs/performance.md)."""
    new, current = (
        simulate(
            period.responses,
            policy=p.policy,
            holidays_for=p.holidays_for,
            opted_out=period.opted_out,
            as_answered=as_answered,
        )
        for p in (proposed, in_force)
    )
    return Simulation(period.start, period.end, as_answered, new, current)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
