"""Ingest alone against the embedded broker, loaded by wrk (Debian package `wrk`) from a
separate process, side by side with a bare FastAPI endpoint (bench/bare.py, the ceiling).

Every webhook is a distinct response, signed per Standard Webhooks (HMAC-SHA256 over
`id.timestamp.body`, pre-signed just before the run because wrk's Lua has no HMAC; the
timestamps stay within ingest's 5-minute tolerance), verified, published with acks=all and
acknowledged by the broker before the 202. Then the same webhooks at half the measured
throughput (wrk's `delay()` paces each connection) for the latency there.

    apt-get install wrk
    .venv/bin/python bench/ingest.py --connections 32 --seconds 10
    .venv/bin/python bench/ingest.py --broker apache-kafka   # one Apache Kafka node instead
"""

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from nps_events.topics import ALL_TOPICS
from nps_ingest.domain.signatures import sign_standard_webhooks
from nps_kit.devstack import free_port, new_broker, scratch_dir
from nps_kit.devstack.services import ServiceProcess
from nps_kit.messaging import ensure_topics
from nps_kit.settings import KafkaSettings

SECRET = "whsec_" + base64.b64encode(b"bench-key-bench-key-bench-key-32").decode()
SOURCES = f"""
sources:
  bench-sw:
    provider: standard-webhooks
    secrets: [{{value: "{SECRET}"}}]
  bench-canonical:
    provider: canonical
    tokens: [{{value: "bench-token"}}]
"""

# The same responses through the canonical API with a bearer token, for comparison.
CANONICAL = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"response_id":"k' .. counter .. '","survey_id":"bench","customer":{"id":"k' ..
    counter .. '","email":"k' .. counter .. '@example.com"},"score":3,"comment":"slow",' ..
    '"responded_at":"2026-11-24T10:00:00Z"}'
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer bench-token"
  return wrk.format("POST", "/v1/responses", headers, body)
end
"""

# Replays the pre-signed requests of `requests.tsv` (id, timestamp, signature, body per line),
# each wrk thread from its own offset; `pace_ms` > 0 paces each connection (mean delay).
SIGNED = """
local requests = {}
for line in io.lines("%(file)s") do
  local id, ts, sig, body = line:match("([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)")
  requests[#requests + 1] = {id, ts, sig, body}
end
local counter = 0
local pace = %(pace_ms)s
setup = function(thread) end
init = function(args) counter = math.random(#requests) end
request = function()
  counter = counter %% #requests + 1
  local r = requests[counter]
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["webhook-id"] = r[1]
  headers["webhook-timestamp"] = r[2]
  headers["webhook-signature"] = r[3]
  return wrk.format("POST", "%(path)s", headers, r[4])
end
if pace > 0 then
  -- Uniformly jittered around the mean, so that the connections do not fire in step.
  delay = function() return pace * 2 * math.random() end
end
"""


def _body(i: int, kind: str) -> bytes:
    return json.dumps(
        {
            "type": kind,
            "data": {
                "response_id": f"w{i}",
                "survey_id": "bench",
                "customer": {"id": f"c{i}", "email": f"c{i}@example.com"},
                "score": 3,
                "comment": "slow",
                "responded_at": "2026-11-24T10:00:00Z",
            },
        },
        separators=(",", ":"),
    ).encode()


FLOOR = "plain ASGI POST + broker ack (the floor: aiokafka, acks=all, nothing else)"


def presign(path: Path, count: int, kind: str = "response.created") -> None:
    now = int(time.time())
    with path.open("w") as out:
        for i in range(count):
            body = _body(i, kind)
            msg_id = f"msg_{i}"
            sig = sign_standard_webhooks(msg_id=msg_id, timestamp=now, body=body, secret=SECRET)
            out.write(f"{msg_id}\t{now}\t{sig}\t{body.decode()}\n")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    connections: int, seconds: int, url: str, script: Path, *, server: int, broker: int | None
) -> dict[str, float]:
    """wrk's throughput and percentiles, plus the CPU time the server and the broker spent
    per request: a figure much less sensitive to a noisy machine than req/s."""
    before = (cpu_seconds(server), cpu_seconds(broker))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {"non2xx": 0.0}
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(line.split()[1])
        elif re.match(r"^(50|99)(\.000)?%", line):
            key, value = line.split()[:2]
            figures["p" + key.split("%")[0].split(".")[0]] = _ms(value)
        elif line.startswith("Non-2xx"):
            figures["non2xx"] = float(line.split()[-1])
        elif "requests in" in line:
            figures["requests"] = float(line.split()[0])
    done = max(figures.get("requests", 0.0), 1.0)
    figures["server_us"] = (cpu_seconds(server) - before[0]) / done * 1e6
    figures["broker_us"] = (cpu_seconds(broker) - before[1]) / done * 1e6
    return figures


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit) and (unit != "s" or not value.endswith(("ms", "us"))):
            return float(value[: -len(unit)]) * factor
    return float(value)


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def main() -> None:  # noqa: PLR0915 - one straight script
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--broker", choices=["tansu", "apache-kafka"], default="tansu")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated lines to run, by a word of their label (floor,minimal,canonical,signed,paced;"
        " same-rate: the floor paced at the signed webhook's rate): a before/after comparison of"
        " one path in less time",
    )
    args = parser.parse_args()
    only = [word for word in args.only.split(",") if word]
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    tmp = scratch_dir("npsloop-bench-")
    broker = new_broker(args.broker, tmp)
    broker.start()
    idempotence = "true" if args.broker == "apache-kafka" else "false"
    (tmp / "sources.yaml").write_text(SOURCES)
    port = free_port()
    ingest = ServiceProcess(
        name="ingest",
        port=port,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": idempotence,
            "INGEST_SOURCES_FILE": str(tmp / "sources.yaml"),
            "INGEST_PORT": str(port),
            "LOG_LEVEL": "WARNING",
        },
        log_path=tmp / "ingest.log",
    )
    bare_port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("bare.py")),
            str(bare_port),
            broker.bootstrap_servers,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BENCH_WEBHOOK_SECRET": SECRET},
    )
    try:
        asyncio.run(
            ensure_topics(
                KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
                [*ALL_TOPICS, "bench.floor"],
                partitions=3,
            )
        )
        ingest.start()
        ingest.wait_ready(timeout=30)
        _wait(f"http://127.0.0.1:{bare_port}/livez")
        signed = tmp / "requests.tsv"
        presign(signed, 40_000)

        # Signed and verified but of a type that carries no response: no broker round trip,
        # so the gap to the line above is the broker's acknowledgement.
        unpublished = tmp / "unpublished.tsv"
        presign(unpublished, 5_000, kind="survey.published")

        def script(name: str, path: str, pace_ms: float = 0, file: Path = signed) -> Path:
            lua = tmp / name
            lua.write_text(SIGNED % {"file": file, "path": path, "pace_ms": pace_ms})
            return lua

        bare_url = f"http://127.0.0.1:{bare_port}"
        canonical = tmp / "canonical.lua"
        canonical.write_text(CANONICAL)
        assert ingest.process is not None
        on_ingest = {"server": ingest.process.pid, "broker": broker.pid}
        lines: dict[str, Callable[[], dict[str, float]]] = {
            "bare FastAPI POST (ceiling)": lambda: wrk(
                args.connections,
                args.seconds,
                bare_url,
                script("bare.lua", "/bare"),
                server=bare.pid,
                broker=None,
            ),
            "plain ASGI POST (uvicorn alone)": lambda: wrk(
                args.connections,
                args.seconds,
                bare_url,
                script("asgi.lua", "/asgi"),
                server=bare.pid,
                broker=None,
            ),
            FLOOR: lambda: wrk(
                args.connections,
                args.seconds,
                bare_url,
                script("floor.lua", "/kafka"),
                server=bare.pid,
                broker=broker.pid,
            ),
            "minimal signed webhook (ingest's work in plain ASGI, no structure)": lambda: wrk(
                args.connections,
                args.seconds,
                bare_url,
                script("minimal.lua", "/minimal"),
                server=bare.pid,
                broker=broker.pid,
            ),
            "ingest canonical POST /v1/responses": lambda: wrk(
                args.connections, args.seconds, ingest.url, canonical, **on_ingest
            ),
            "ingest signed webhook": lambda: wrk(
                args.connections,
                args.seconds,
                ingest.url,
                script("signed.lua", "/v1/webhooks/bench-sw"),
                **on_ingest,
            ),
            "ingest signed webhook, verified, nothing to publish": lambda: wrk(
                args.connections,
                args.seconds,
                ingest.url,
                script("unpublished.lua", "/v1/webhooks/bench-sw", file=unpublished),
                **on_ingest,
            ),
        }
        results = {
            label: line()
            for label, line in lines.items()
            if not only or any(word in label for word in only)
        }

        full = results.get("ingest signed webhook", {}).get("rps", 0.0)
        half = full / 2
        if half and (not only or "paced" in only):
            # Each connection waits connections/rate seconds between its requests.
            pace = args.connections / half * 1000
            results[f"ingest signed webhook at ~{half:.0f} req/s"] = wrk(
                args.connections,
                args.seconds,
                ingest.url,
                script("paced.lua", "/v1/webhooks/bench-sw", round(pace)),
                **on_ingest,
            )
        if full and (not only or "same-rate" in only):
            # The floor's CPU per request depends on its rate: at a lower rate each socket write
            # wakes a sleeping reader (wrk, the broker) and each produce request carries fewer
            # messages. The floor paced at the signed webhook's rate splits ingest's gap into
            # what its own work costs and what its lower rate costs.
            pace = args.connections / full * 1000
            results[f"the floor at the signed webhook's rate (~{full:.0f} req/s)"] = wrk(
                args.connections,
                args.seconds,
                bare_url,
                script("floor-paced.lua", "/kafka", round(pace, 2)),
                server=bare.pid,
                broker=broker.pid,
            )
        ceiling = results.get("bare FastAPI POST (ceiling)", {}).get("rps", 0.0)
        for label, figures in results.items():
            print(
                f"{label}: {figures.get('rps', 0):,.0f} req/s, p50 {figures.get('p50', 0):.1f} ms,"
                f" p99 {figures.get('p99', 0):.1f} ms, non-2xx {figures['non2xx']:.0f};"
                f" CPU per request: server {figures['server_us']:.0f} µs,"
                f" broker {figures['broker_us']:.0f} µs"
            )
        if ceiling:
            print(f"signed webhook / bare: {full / ceiling:.0%}")
        if floor := results.get(FLOOR, {}).get("rps", 0.0):
            print(f"signed webhook / the floor: {full / floor:.0%}")
    finally:
        bare.terminate()
        bare.wait(timeout=10)
        ingest.stop()
        broker.stop()


if __name__ == "__main__":
    main()
