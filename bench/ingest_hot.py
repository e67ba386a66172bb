"""Ingest's signed webhook in process: CPU per delivery, without HTTP, wrk or a broker.

The app `http_app` builds (the hot route ahead of FastAPI) is called as uvicorn would call it,
with 20,000 distinct Standard Webhooks deliveries signed just before, 32 in flight, and a
publisher that encodes each event as the kit's publisher does (`nps_events.encode`) and
acknowledges at once. `time.process_time` per delivery, best of `--rounds`: a figure for
changes to ingest's own code, steady on a shared machine where req/s is not (the broker's
and uvicorn's costs are in bench/ingest.py's lines).

    .venv/bin/python bench/ingest_hot.py --rounds 5
    .venv/bin/python bench/ingest_hot.py --rounds 5 --route canonical   # POST /v1/responses

`--route canonical` posts the same responses to the canonical API with a bearer token, as
bench/ingest.py's canonical line (and bench/pipeline.py) does.
"""

import argparse
import asyncio
import gc
import json
import sys
import time
from datetime import datetime
from typing import Any

from ingest import SECRET, _body  # bench/ingest.py, beside this script

from nps_events import Event, encode
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.config import parse_sources
from nps_ingest.domain.signatures import sign_standard_webhooks
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import SystemClock

SOURCES = f"""
sources:
  bench-sw:
    provider: standard-webhooks
    secrets: [{{value: "{SECRET}"}}]
  bench-canonical:
    provider: canonical
    tokens: [{{value: "bench-token"}}]
"""


WEBHOOK, CANONICAL = "/v1/webhooks/bench-sw", "/v1/responses"


class EncodingPublisher:
    """Encodes as the kit's publisher does; the broker's acknowledgement is immediate."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        encode(event, source=source, time=now)
        self.published += 1


def deliveries(count: int, offset: int) -> list[Any]:
    now = int(time.time())
    out: list[Any] = []
    for i in range(offset, offset + count):
        body = _body(i, "response.created")
        msg_id = f"msg_{i}"
        signature = sign_standard_webhooks(msg_id=msg_id, timestamp=now, body=body, secret=SECRET)
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", str(now).encode()),
            (b"webhook-signature", signature.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        out.append((headers, body))
    return out


def canonical_posts(count: int, offset: int) -> list[Any]:
    out: list[Any] = []
    for i in range(offset, offset + count):
        body = json.dumps(json.loads(_body(i, "response.created"))["data"]).encode()
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer bench-token"),
            (b"content-length", str(len(body)).encode()),
        ]
        out.append((headers, body))
    return out


async def run(app: Any, batch: list[Any], in_flight: int, path: str) -> list[int]:
    statuses: list[int] = []

    async def one(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    queue = list(batch)

    async def worker() -> None:
        while queue:
            headers, body = queue.pop()
            await one(headers, body)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--route", choices=["webhook", "canonical"], default="webhook")
    args = parser.parse_args()
    publisher = EncodingPublisher()
    app = http_app(
        sources=parse_sources(SOURCES, {}),
        adapters=ADAPTERS,
        fetchers={},
        publisher=publisher,
        clock=SystemClock(),
        publish_timeout=5.0,
    )
    gc.freeze()  # as a running service does after start-up
    figures = []
    for round_ in range(args.rounds):
        if args.route == "canonical":
            batch, path = canonical_posts(args.deliveries, round_ * args.deliveries), CANONICAL
        else:
            batch, path = deliveries(args.deliveries, round_ * args.deliveries), WEBHOOK
        started = time.process_time()
        statuses = asyncio.run(run(app, batch, args.in_flight, path))
        spent = time.process_time() - started
        if set(statuses) != {202} or len(statuses) != args.deliveries:
            sys.exit(f"not every delivery was accepted: {sorted(set(statuses))}")
        figures.append(spent / args.deliveries * 1e6)
    print(
        f"{'canonical POST' if args.route == 'canonical' else 'signed webhook'} in process: best {min(figures):.1f} µs, median "
        f"{sorted(figures)[len(figures) // 2]:.1f} µs of CPU per delivery "
        f"({args.deliveries} x {args.rounds}; {publisher.published} published)"
    )


if __name__ == "__main__":
    main()
