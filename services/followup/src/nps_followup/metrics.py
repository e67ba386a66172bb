"""followup's Prometheus metrics: the cases people work, and those past their deadline."""

from prometheus_client import Counter, Gauge

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
    "act_on_responses_within).",
    ["reason"],
)
for _reason in ("backfill", "older_than_window"):  # present at 0 from the start, for alerts
    RESPONSES_NOT_ACTED_ON.labels(reason=_reason)
