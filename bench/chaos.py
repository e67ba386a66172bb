"""The chaos suite, full version: the table in docs/reliability.md.

Starts the test infrastructure (embedded broker, PostgreSQL, SMTP sink), fake Zendesk and
Twilio over HTTP, and the four services as processes (the e2e system), then runs each fault
while responses flow and counts from the outside (tests/support/chaos.py): responses
accepted, detractors without a case, duplicate cases, emails and tickets (and duplicates),
`unknown` actions, poison records in the DLQ, other DLQ entries, and the time from the end of
the fault until every detractor had a case with its email and ticket dispatched.

    .venv/bin/python bench/chaos.py                      # every fault, ~12 minutes
    .venv/bin/python bench/chaos.py --only db-2m --responses 2000 --rate 50
    .venv/bin/python bench/chaos.py --cluster            # brokers of a 3-node Apache Kafka

`--cluster` runs the services on a three-node Apache Kafka cluster instead (topics with three
replicas, `min.insync.replicas=2`; Java and Maven) and its faults: the broker leading ingest's
partition SIGKILLed, then two brokers of three.
"""

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nps_kit.devstack import ApacheKafkaCluster, free_port
from nps_kit.devstack.services import SERVICES, ServiceProcess, start_all
from tests.e2e.conftest import TOKEN, system_env
from tests.support import chaos
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_zendesk import FakeZendesk
from tests.support.infra import Infra, running_cluster, running_infra
from tests.support.serve import served

Scenario = tuple[str, Callable[[Infra, dict[str, ServiceProcess]], chaos.Fault], int]


def scenarios() -> dict[str, Scenario]:
    """name: (what the table says, the fault, poison every N records or 0)."""
    return {
        "db-10s": (
            "PostgreSQL killed for 10 s",
            lambda infra, _: chaos.database_outage(_need(infra.postgres), 10),
            0,
        ),
        "db-2m": (
            "PostgreSQL killed for 2 min",
            lambda infra, _: chaos.database_outage(_need(infra.postgres), 120),
            0,
        ),
        "broker-15s": (
            "broker frozen for 15 s",
            lambda infra, _: chaos.broker_pause(_need(infra.broker), 15),
            0,
        ),
        "kill-each": (
            "each service SIGKILLed in turn",
            lambda _, services: chaos.kill_each(services, every=3),
            0,
        ),
        "poison-1pct": ("1% poison records", lambda _, __: chaos.no_fault(), 100),
    }


def cluster_scenarios() -> dict[str, Scenario]:
    """The faults of a three-node Apache Kafka cluster (`--cluster`)."""
    return {
        "leader-15s": (
            "the leader's broker SIGKILLed for 15 s",
            lambda infra, _: chaos.leader_killed(_cluster(infra), 15),
            0,
        ),
        "leader-2m": (
            "the leader's broker SIGKILLed for 2 min",
            lambda infra, _: chaos.leader_killed(_cluster(infra), 120),
            0,
        ),
        "two-30s": (
            "two brokers of three SIGKILLed for 30 s",
            lambda infra, _: chaos.brokers_killed(_cluster(infra), 30, count=2),
            0,
        ),
    }


def _cluster(infra: Infra) -> ApacheKafkaCluster:
    if not isinstance(infra.broker, ApacheKafkaCluster):
        raise SystemExit("this fault needs the three-node cluster: --cluster")
    return infra.broker


T = TypeVar("T")


def _need(value: T | None) -> T:
    if value is None:
        raise SystemExit("the chaos bench needs the embedded infrastructure")
    return value


async def run_all(
    target: chaos.Target,
    infra: Infra,
    services: dict[str, ServiceProcess],
    args: argparse.Namespace,
) -> list[chaos.Report]:
    reports: list[chaos.Report] = []
    chosen = cluster_scenarios() if args.cluster else scenarios()
    for key, (name, fault, poison_every) in chosen.items():
        if args.only and key not in args.only:
            continue
        report = await chaos.run(
            target,
            fault(infra, services),
            name=name,
            responses=args.responses,
            rate=args.rate,
            poison_every=poison_every,
            settle_timeout=args.settle_timeout,
        )
        print(report.row(), flush=True)
        reports.append(report)
    return reports


@contextlib.contextmanager
def _infra(tmp: Path, *, cluster: bool) -> Iterator[Infra]:
    with running_infra(tmp) as infra:
        if not cluster:
            yield infra
            return
        with running_cluster(infra, tmp / "cluster") as on_cluster:
            yield on_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=600, help="responses per fault")
    parser.add_argument("--rate", type=float, default=20, help="responses posted per second")
    parser.add_argument("--settle-timeout", type=float, default=300)
    parser.add_argument(
        "--only", nargs="*", choices=[*scenarios(), *cluster_scenarios()], help="faults to run"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="on a three-node Apache Kafka cluster"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="npsloop-chaos-") as tmp_dir:
        tmp = Path(tmp_dir)
        zendesk, twilio = FakeZendesk(), FakeTwilio()
        with (
            _infra(tmp, cluster=args.cluster) as infra,
            served(zendesk.app()) as zendesk_url,
            served(twilio.app()) as twilio_url,
        ):
            logs = tmp / "logs"
            logs.mkdir()
            env = system_env(
                infra, zendesk=(zendesk, zendesk_url), twilio=(twilio, twilio_url), logs=logs
            )
            services = start_all(
                env, ports={n: free_port() for n in SERVICES}, log_dir=logs, ready_timeout=120
            )
            target = chaos.Target(
                ingest=services["ingest"].url,
                followup=services["followup"].url,
                bootstrap_servers=infra.bootstrap_servers,
                token=TOKEN,
                mail=infra.mail,
                zendesk=zendesk,
                staff_token=infra.token("admin@example.com"),
            )
            print(chaos.Report.HEADER, flush=True)
            try:
                reports = asyncio.run(run_all(target, infra, services, args))
            finally:
                for service in services.values():
                    service.stop()
    for report in reports:
        if report.other_reasons:
            print(f"\n{report.fault}: dead-lettered, not poison:")
            for reason in sorted(set(report.other_reasons)):
                print(f"- {reason}")
        if report.poison_reasons:
            print(f"\n{report.fault}: dead-letter reasons of the poison records:")
            for reason in sorted(set(report.poison_reasons)):
                print(f"- {reason}")


if __name__ == "__main__":
    main()
