"""notify's Prometheus metrics (the kit's cover HTTP, consumers and the outbox)."""

from prometheus_client import Counter, Gauge

DISPATCHES = Counter(
    "npsloop_dispatches_total",
    "Actions dispatched, by channel (email, staff, sms, ticket, webhook) and outcome (sent, "
    "failed, unknown, deferred).",
    ["channel", "outcome"],
)
CIRCUIT_OPEN = Gauge(
    "npsloop_channel_circuit_open",
    "1 while the channel's circuit breaker holds its actions back (the provider keeps "
    "refusing), else 0. Outbound webhooks have a circuit per endpoint: webhook:<name>.",
    ["channel"],
)
PARKED = Gauge(
    "npsloop_parked_actions",
    "Actions waiting in notify.parked for another try (deferred by a provider or an open "
    "circuit), as of the last sweep.",
)
