"""Closed-loop figures: the rates customer-success teams steer by, from counts."""

from dataclasses import dataclass


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to measure yet."""
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Rates:
    #: Of the cases whose deadline is settled (contacted, or past due), the share contacted in
    #: time.
    sla_compliance: float | None
    #: The share of cases closed: the loop closed with the customer.
    closed_loop_rate: float | None
    #: Of the detractors who answered again, the share who now score as promoters.
    recovery_rate: float | None


def rates(
    *, cases: int, on_time: int, breached: int, closed: int, with_later_answer: int, recovered: int
) -> Rates:
    return Rates(
        sla_compliance=ratio(on_time, on_time + breached),
        closed_loop_rate=ratio(closed, cases),
        recovery_rate=ratio(recovered, with_later_answer),
    )
