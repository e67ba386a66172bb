"""Ingest alone against the embedded broker, loaded by wrk (Debian package `wrk`).

Each request is a distinct response, so every one is validated, published with acks=all and
acknowledged before the 202.

    apt-get install wrk
    .venv/bin/python bench/ingest.py --connections 32 --seconds 10
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nps_events.topics import ALL_TOPICS
from nps_kit.devstack import EmbeddedBroker, free_port
from nps_kit.devstack.services import ServiceProcess
from nps_kit.messaging import ensure_topics
from nps_kit.settings import KafkaSettings

POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
counter = 0
request = function()
  counter = counter + 1
  local body = '{"response_id":"w' .. counter .. '","survey_id":"bench","customer":{"id":"c' .. counter ..
    '","email":"c' .. counter .. '@example.com"},"score":3,"comment":"slow","responded_at":"2026-11-24T10:00:00Z"}'
  return wrk.format(nil, "/v1/responses", nil, body)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="npsloop-bench-"))
    broker = EmbeddedBroker(port=free_port(), log_path=tmp / "broker.log")
    broker.start()
    port = free_port()
    ingest = ServiceProcess(
        name="ingest",
        port=port,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "INGEST_API_TOKENS": json.dumps({"bench": "bench-token"}),
            "INGEST_PORT": str(port),
            "LOG_LEVEL": "WARNING",
        },
        log_path=tmp / "ingest.log",
    )
    try:
        asyncio.run(
            ensure_topics(
                KafkaSettings(bootstrap_servers=broker.bootstrap_servers), ALL_TOPICS, partitions=3
            )
        )
        ingest.start()
        ingest.wait_ready(timeout=30)
        script = tmp / "post.lua"
        script.write_text(POST)
        for label, target in (
            ("GET /livez", [ingest.url + "/livez"]),
            ("POST /v1/responses", ["-s", str(script), ingest.url]),
        ):
            out = subprocess.run(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", *target],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            lines = [
                line.strip()
                for line in out.splitlines()
                if line.strip().startswith(("50%", "99%", "Requests/sec", "Non-2xx"))
            ]
            print(f"{label}: " + "; ".join(lines))
    finally:
        ingest.stop()
        broker.stop()


if __name__ == "__main__":
    main()
