"""What the metrics port costs: the per-request dispatch by port that every API request now
goes through (`nps_kit.service.by_port`, in process, against calling the app directly), and,
given running services' metrics URLs (the dev stack prints them), a scrape's latency and size.

    .venv/bin/python bench/metrics_port.py [http://127.0.0.1:8101/metrics ...]
"""

import asyncio
import statistics
import sys
import time

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nps_kit.service import by_port

CALLS = 200_000
SCRAPES = 200


async def _noop(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def _receive() -> Message:
    return {"type": "http.disconnect"}


async def _send(message: Message) -> None:
    return None


async def _per_call(app: ASGIApp) -> float:
    """Best of five runs: nanoseconds per call of `app` on an API request's scope."""
    scope: Scope = {"type": "http", "server": ("127.0.0.1", 8001), "path": "/v1/webhooks/x"}
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(CALLS):
            await app(scope, _receive, _send)
        best = min(best, (time.perf_counter() - started) / CALLS * 1e9)
    return best


def _scrape(url: str) -> str:
    times = []
    with httpx.Client(timeout=10) as client:  # one keep-alive connection, as Prometheus keeps
        for _ in range(SCRAPES):
            started = time.perf_counter()
            answer = client.get(url, headers={"accept-encoding": "identity"})
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
    times.sort()
    return (
        f"{url}: {len(answer.content)} B, median {statistics.median(times) * 1e3:.2f} ms, "
        f"p99 {times[int(SCRAPES * 0.99) - 1] * 1e3:.2f} ms ({SCRAPES} scrapes)"
    )


def main() -> None:
    direct = asyncio.run(_per_call(_noop))
    dispatched = asyncio.run(_per_call(by_port(_noop, metrics_port=9464, metrics=_noop)))
    lines = [
        f"app called directly: {direct:.0f} ns per request",
        f"through by_port:     {dispatched:.0f} ns per request (+{dispatched - direct:.0f} ns)",
    ]
    lines += [_scrape(url) for url in sys.argv[1:]]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
