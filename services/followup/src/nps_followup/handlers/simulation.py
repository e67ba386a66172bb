"""`policy simulate`: replay the stored responses of a period through a policy, and through the
policy in force beside it, in a read-only transaction: nothing is written, nothing is sent."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from nps_followup.domain.simulation import Outcome, simulate
from nps_followup.handlers.common import PolicyInForce
from nps_followup.handlers.ports import StoredResponses


@dataclass(frozen=True, slots=True)
class Simulation:
    """The period replayed (UTC days, both included), and what each policy would have done."""

    start: date
    end: date
    as_answered: bool
    proposed: Outcome
    in_force: Outcome


async def simulate_policy(
    repo: StoredResponses,
    *,
    proposed: PolicyInForce,
    in_force: PolicyInForce,
    start: date,
    end: date,
    as_answered: bool = False,
) -> Simulation:
    """What `proposed` and `in_force` would each have done with the responses answered from
    `start` to `end` (UTC days, both included)."""
    await repo.read_only()
    responses = await repo.scored_between(_midnight(start), _midnight(end + timedelta(days=1)))
    opted_out = await repo.all_opt_outs()
    outcomes = [
        simulate(
            responses,
            policy=p.policy,
            holidays_for=p.holidays_for,
            opted_out=opted_out,
            as_answered=as_answered,
        )
        for p in (proposed, in_force)
    ]
    return Simulation(start, end, as_answered, outcomes[0], outcomes[1])


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
