"""followup's Prometheus metrics: the cases people work, and those past their deadline."""

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

from nps_events import Segment
from nps_followup.domain.cases import CaseStatus

CASES_ACTIVE = Gauge(
    "npsloop_cases_active",
    "Cases a person still has to work (open or contacted), by segment and status.",
    ["segment", "status"],
)
CASES_BREACHED = Gauge(
    "npsloop_cases_breached",
    "Open cases whose contact deadline has passed without a contact, by escalation level.",
    ["level"],
)
RESPONSES_NOT_ACTED_ON = Counter(
    "npsloop_responses_not_acted_on",
    "Responses a rule would have acted on that opened no case and sent nothing, by reason: "
    "backfill (imported as history) or older_than_window (answered longer ago than the rule's "
    "act_on_responses_within) or holdout (the customer is in the rule's holdout).",
    ["reason"],
)
RESPONSES_HELD_OUT = Counter(
    "npsloop_responses_held_out",
    "Responses whose customer is in the holdout of the rule that applies (`holdout: 10%`): "
    "they received none of its messages, for the impact figures' comparison. By rule.",
    ["rule"],
)
for _reason in (
    "backfill",
    "older_than_window",
    "holdout",
):  # present at 0 from the start, for alerts
    RESPONSES_NOT_ACTED_ON.labels(reason=_reason)

REFERRALS_RECORDED = Counter(
    "npsloop_referrals_recorded",
    "Referrals recorded against promoters' referral codes (POST /v1/referrals; a retry with "
    "the same id is not counted again).",
)

#: A case's escalation levels: 0 until its deadline, 1 once its lead is told, 2 at the second
#: level (`domain/escalation.py`).
ESCALATION_LEVELS = (0, 1, 2)


def set_case_gauges(active: Mapping[tuple[str, str], int], breached: Mapping[int, int]) -> None:
    """The gauges from one count of the cases: `active` by (segment, status), `breached` by
    escalation level. Every segment with every status a person works, and every level, is
    set, to 0 where the count has none: a group that empties reads 0, not its last count."""
    for segment in Segment:
        for status in (s for s in CaseStatus if s.is_active):
            CASES_ACTIVE.labels(segment.value, status.value).set(
                active.get((segment.value, status.value), 0)
            )
    for level in ESCALATION_LEVELS:
        CASES_BREACHED.labels(str(level)).set(breached.get(level, 0))
