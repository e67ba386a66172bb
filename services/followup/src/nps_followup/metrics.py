"""followup's Prometheus metrics: the cases people work, and those past their deadline."""

from prometheus_client import Gauge

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
