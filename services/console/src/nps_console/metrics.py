"""The console's Prometheus metrics (the kit's cover HTTP)."""

from prometheus_client import Counter

TOKEN_REFRESHES = Counter(
    "npsloop_console_token_refreshes_total",
    "Access tokens the console renewed with a refresh token, by outcome: refreshed, "
    "unavailable (the provider did not answer; the access token still held, tried again on "
    "the next page) or refused (the session ended).",
    ["outcome"],
)
