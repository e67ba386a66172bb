"""Impact figures: how much NPS moves between two consecutive answers of the same customer,
by the segment of the earlier answer and by what followup did in between.

A pair is a customer's answer and their next answer to the same survey (same source and
survey id): what was done after the earlier answer and before the later one is the pair's
group. Each customer counts once per group (their first pair of the period in it), so that
`customers` is the sample size of independent observations.

The margin of error (95%) of the change, for paired three-category data: each customer's NPS
indicator is +1 (promoter), 0 (passive) or -1 (detractor); their difference d = later -
earlier is -2…+2. The change is 100·mean(d), its standard error 100·s_d/√n (s_d the sample
standard deviation of d), the margin 1.96 standard errors. The two answers of one customer
are not independent samples, so the margin of the difference of two NPS (which treats them as
independent) would be wrong; the per-customer difference is the correct unit.

A change is `conclusive` only with at least `MIN_CUSTOMERS` customers and an interval that
excludes zero; otherwise the reason says which of the two it lacks."""

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from nps_events import Segment

#: Below this many customers a group's margin (a normal approximation) is not trusted.
MIN_CUSTOMERS = 30
#: The 95% quantile of the standard normal distribution, two-sided.
Z95 = 1.96


class Done(StrEnum):
    """What followup did between a customer's answer and their next one."""

    #: A person reached the customer by the case's contact deadline.
    CONTACTED_WITHIN_SLA = "contacted_within_sla"
    #: A person reached the customer, after the deadline.
    CONTACTED_LATE = "contacted_late"
    #: Nobody reached the customer and no automated message was sent (no rule, a message held
    #: back or not yet due, a case nobody worked before the next answer).
    NOT_CONTACTED = "not_contacted"
    #: A rule of automated messages only (no case) sent the customer a message.
    AUTOMATED_MESSAGE_ONLY = "automated_message_only"
    #: The customer was in the rule's holdout: nothing was sent on purpose.
    HELD_OUT = "held_out"


#: Reasons a response was set aside that mean followup never saw it live: history.
HISTORY = frozenset({"backfill", "older_than_window"})


@dataclass(frozen=True, slots=True)
class AnswerPair:
    """A customer's answer and their next answer to the same survey, with what followup
    recorded about the earlier one."""

    customer_id: str
    earlier_segment: Segment
    later_segment: Segment
    earlier_at: datetime
    later_at: datetime
    #: The earlier answer was imported as history (`backfill`).
    backfill: bool = False
    #: Why the earlier answer was set aside (`holdout`, `backfill`, `older_than_window`).
    set_aside: str | None = None
    #: The earlier answer opened a case (a person's or an automated one).
    has_case: bool = False
    #: The case's contact deadline; None for an automated case.
    due_at: datetime | None = None
    first_contact_at: datetime | None = None
    #: When the case's first message to the customer was reported sent.
    message_sent_at: datetime | None = None


def what_was_done(pair: AnswerPair) -> Done | None:
    """The pair's group; None for history (an answer followup did not see live: what was done
    then is not known here)."""
    if pair.backfill or pair.set_aside in HISTORY:
        return None
    if pair.set_aside == "holdout" and not pair.has_case:
        # (A response held out, then revised into another segment whose rule opened a case,
        # has both records: the case is what happened.)
        return Done.HELD_OUT
    if pair.due_at is not None:
        contact = pair.first_contact_at
        if contact is None or contact > pair.later_at:
            return Done.NOT_CONTACTED
        return Done.CONTACTED_WITHIN_SLA if contact <= pair.due_at else Done.CONTACTED_LATE
    if pair.has_case and pair.message_sent_at is not None and pair.message_sent_at <= pair.later_at:
        return Done.AUTOMATED_MESSAGE_ONLY
    return Done.NOT_CONTACTED


def indicator(segment: Segment) -> int:
    """A customer's contribution to NPS: +1 promoter, 0 passive, -1 detractor."""
    return {Segment.PROMOTER: 1, Segment.PASSIVE: 0, Segment.DETRACTOR: -1}[segment]


@dataclass(frozen=True, slots=True)
class Estimate:
    """An NPS change in points with its 95% margin of error, and whether it shows anything."""

    customers: int
    change: float
    #: None with fewer than two customers (no spread to measure).
    margin: float | None
    #: The standard error in points (None as `margin`).
    standard_error: float | None
    conclusive: bool
    #: Why it is not conclusive (None when it is).
    reason: str | None

    #: How far the change can go either way: 200 points for one group (all detractors to all
    #: promoters), 400 for the difference of two changes. The interval stops there, where the
    #: normal approximation of a small group would run past it.
    bound: float = 200

    @property
    def low(self) -> float | None:
        return None if self.margin is None else max(-self.bound, self.change - self.margin)

    @property
    def high(self) -> float | None:
        return None if self.margin is None else min(self.bound, self.change + self.margin)


def _judge(
    customers: int,
    change: float,
    standard_error: float | None,
    *,
    what: str = "the change",
    bound: float = 200,
) -> Estimate:
    margin = None if standard_error is None else Z95 * standard_error
    estimate = Estimate(
        customers=customers,
        change=change,
        margin=margin,
        standard_error=standard_error,
        conclusive=False,
        reason=None,
        bound=bound,
    )
    low, high = estimate.low, estimate.high
    reason = None
    if customers < MIN_CUSTOMERS:
        reason = (
            f"too few customers: {customers}, fewer than {MIN_CUSTOMERS} (the margin of "
            "error is not reliable below that)"
        )
    elif low is not None and high is not None and low <= 0 <= high:
        reason = f"the 95% interval of {what}, {low:+.1f} to {high:+.1f} points, includes zero"
    return replace(estimate, conclusive=reason is None, reason=reason)


@dataclass(frozen=True, slots=True)
class ImpactGroup:
    segment: Segment
    done: Done
    nps_before: float
    nps_after: float
    estimate: Estimate


def estimate_change(pairs: list[AnswerPair]) -> tuple[float, float, Estimate]:
    """(NPS of the earlier answers, NPS of the later ones, the change) over `pairs`, one per
    customer, in points."""
    n = len(pairs)
    before = [indicator(p.earlier_segment) for p in pairs]
    after = [indicator(p.later_segment) for p in pairs]
    diffs = [a - b for a, b in zip(after, before, strict=True)]
    mean = sum(diffs) / n
    standard_error = None
    if n >= 2:
        variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
        standard_error = 100 * math.sqrt(variance / n)
    return 100 * sum(before) / n, 100 * sum(after) / n, _judge(n, 100 * mean, standard_error)


def impact(pairs: Iterable[AnswerPair]) -> list[ImpactGroup]:
    """The impact figures: per segment of the earlier answer and what was done, the groups
    that have customers, in segment then `Done` order. History is left out."""
    firsts: dict[tuple[Segment, Done], dict[str, AnswerPair]] = {}
    for pair in sorted(pairs, key=lambda p: (p.earlier_at, p.customer_id)):
        done = what_was_done(pair)
        if done is None:
            continue
        firsts.setdefault((pair.earlier_segment, done), {}).setdefault(pair.customer_id, pair)
    order = {s: i for i, s in enumerate((Segment.DETRACTOR, Segment.PASSIVE, Segment.PROMOTER))}
    groups = []
    for (segment, done), by_customer in sorted(
        firsts.items(), key=lambda kv: (order[kv[0][0]], list(Done).index(kv[0][1]))
    ):
        before, after, estimate = estimate_change(list(by_customer.values()))
        groups.append(ImpactGroup(segment, done, before, after, estimate))
    return groups


def history_pairs(pairs: Iterable[AnswerPair]) -> int:
    """How many pairs were left out as history."""
    return sum(1 for p in pairs if what_was_done(p) is None)


@dataclass(frozen=True, slots=True)
class HoldoutComparison:
    """For one segment: the change of customers who got the automated messages minus the
    change of those held out, the messages' measured effect, with its margin."""

    segment: Segment
    effect: Estimate
    messaged: int
    held_out: int


def against_holdout(groups: list[ImpactGroup]) -> list[HoldoutComparison]:
    """Per segment that has both groups: `automated_message_only` against `held_out`. The two
    groups are different customers (independent), so the standard error of the difference is
    √(se₁² + se₂²); it is conclusive when both groups have enough customers and its interval
    excludes zero."""
    by = {(g.segment, g.done): g.estimate for g in groups}
    found = []
    for segment in (Segment.DETRACTOR, Segment.PASSIVE, Segment.PROMOTER):
        messaged = by.get((segment, Done.AUTOMATED_MESSAGE_ONLY))
        held = by.get((segment, Done.HELD_OUT))
        if messaged is None or held is None:
            continue
        se = None
        if messaged.standard_error is not None and held.standard_error is not None:
            se = math.sqrt(messaged.standard_error**2 + held.standard_error**2)
        effect = _judge(
            min(messaged.customers, held.customers),
            messaged.change - held.change,
            se,
            what="the difference",
            bound=400,
        )
        found.append(HoldoutComparison(segment, effect, messaged.customers, held.customers))
    return found
