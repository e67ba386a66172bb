"""The console's Prometheus metrics (the kit's cover HTTP)."""

from prometheus_client import Counter

TOKEN_REFRESHES = Counter(
    "npsloop_console_token_refreshes_total",
    "Access tokens the console renewed with a refresh token, by outcome: refreshed, or "
    "refused (the provider said no or did not answer, and the session ended).",
    ["outcome"],
)
