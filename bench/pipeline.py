"""End-to-end throughput of the walking skeleton on this machine.

Starts the embedded broker, PostgreSQL and SMTP sink and the four services as processes,
posts N detractor responses to ingest with C concurrent senders, and measures
- ingest: accepted requests per second and latency percentiles (202 = acknowledged by the broker);
- the pipeline: seconds until every response has its email in the SMTP sink.

    .venv/bin/python bench/pipeline.py --responses 2000 --concurrency 32
    .venv/bin/python bench/pipeline.py --broker apache-kafka     # one Apache Kafka node instead

`--broker apache-kafka` runs the broker as the dev stack's `NPSLOOP_BROKER=apache-kafka` does
(one KRaft node, idempotent producers; Java and Maven) instead of the embedded Tansu.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_kit.devstack import EmbeddedPostgres, MailSink, free_port, new_broker
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.devstack.services import SERVICES, ServiceProcess, prepare, start_all

TOKEN = "bench-token"


async def post_all(host: str, port: int, n: int, concurrency: int, run: str) -> list[float]:
    """POST n responses over `concurrency` keep-alive connections. A minimal HTTP/1.1 client:
    httpx's async pool tops out near 150 req/s here and would measure itself, not ingest."""
    latencies: list[float] = []
    # Answered now: followup does not act on answers older than its window.
    answered = datetime.now(UTC).isoformat()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def sender() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                i = queue.get_nowait()
                body = json.dumps(
                    {
                        "response_id": f"{run}-{i}",
                        "survey_id": "bench",
                        "customer": {"id": f"{run}-c{i}", "email": f"{run}-c{i}@example.com"},
                        "score": i % 7,
                        "comment": "bench",
                        "responded_at": answered,
                    }
                ).encode()
                request = (
                    f"POST /v1/responses HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                started = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 202 " not in status:
                    raise RuntimeError(f"ingest answered {status!r}")
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies


async def wait_for_stages(
    database_url: str, mail_dir: Path, n: int, started: float
) -> dict[str, float]:
    """Seconds until every response is scored, has its case, and has its email in the sink."""
    engine = create_async_engine(database_url)
    queries = {
        "scored": "SELECT count(*) FROM scoring.responses",
        "cases opened": "SELECT count(*) FROM followup.cases",
        "dispatched": "SELECT count(*) FROM notify.dispatches WHERE state = 'sent'",
    }
    reached: dict[str, float] = {}
    try:
        async with engine.connect() as conn:
            while len(reached) < len(queries) + 1:
                if time.perf_counter() - started > 900:
                    raise TimeoutError(f"not done within 15 minutes: {reached}")
                for stage, query in queries.items():
                    if stage not in reached and (await conn.scalar(text(query))) >= n:
                        reached[stage] = time.perf_counter() - started
                if "emailed" not in reached and len(list(mail_dir.glob("*.eml"))) >= n:
                    reached["emailed"] = time.perf_counter() - started
                await conn.commit()
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return reached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--broker", choices=["tansu", "apache-kafka"], default="tansu")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="npsloop-bench-"))
    broker = new_broker(args.broker, tmp)
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    mail = MailSink(directory=tmp / "mail", port=free_port())
    idp = ServedIdentityProvider(key_file=tmp / "idp" / "key.pem", port=free_port())
    services: list[ServiceProcess] = []
    broker.start()
    postgres.start()
    mail.start()
    idp.start()
    try:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "true" if args.broker == "apache-kafka" else "false",
            "DATABASE_URL": postgres.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(mail.port),
            "AUTH_ISSUER": idp.issuer,
            "CONSOLE_SESSION_KEYS": Fernet.generate_key().decode(),
            "INGEST_API_TOKENS": json.dumps({"bench": TOKEN}),
            "LOG_LEVEL": "WARNING",
            # The console refuses to start without a key for its sessions (unused here).
        }
        prepare(env, partitions=3)
        services = list(
            start_all(
                env,
                ports={name: free_port() for name in SERVICES},
                log_dir=tmp,
                ready_timeout=90,
            ).values()
        )

        run = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        latencies = asyncio.run(
            post_all("127.0.0.1", services[0].port, args.responses, args.concurrency, run)
        )
        posted = time.perf_counter() - started
        # Every score is 0–6, so every response is a detractor: one case and one email each.
        stages = asyncio.run(wait_for_stages(postgres.url, mail.directory, args.responses, started))
        done = stages["emailed"]
        q = statistics.quantiles(latencies, n=100)
        print(
            f"responses:           {args.responses} (concurrency {args.concurrency}, {args.broker})"
        )
        print(
            f"ingest:              {args.responses / posted:,.0f} req/s accepted; "
            f"latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
        )
        for stage, at in stages.items():
            print(f"{stage + ':':<21}{at:.1f} s after the first post")
        print(f"end to end:          {args.responses / done:,.0f} responses/s (post to email)")
    finally:
        for service in services:
            service.stop()
        idp.stop()
        mail.stop()
        postgres.stop()
        broker.stop()


if __name__ == "__main__":
    main()
