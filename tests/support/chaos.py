"""The chaos suite's engine: responses flow through the four running services while a fault
is injected, then everything is counted from the outside (ingest's answers, followup's API,
the SMTP sink, the helpdesk fake, the dead-letter topics).

Used by `tests/e2e/test_chaos.py` (the short version CI runs) and `bench/chaos.py` (the full
table in docs/reliability.md, 2-minute outages included).

A fault is an async function that injects itself, waits it out, ends it, and returns the
moment it ended (`time.monotonic()`). Once the load is posted, the suite watches until every
detractor has its case with its email and ticket dispatched, while the fault may still last;
recovery is counted from the fault's end until then (0 if the system caught up during the
fault), and from the last response accepted.
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from nps_events import ResponseReceived, Topic, dlq, encode
from nps_kit.devstack import (
    ApacheKafka,
    ApacheKafkaCluster,
    EmbeddedBroker,
    EmbeddedPostgres,
    MailSink,
)
from nps_kit.devstack.services import ServiceProcess
from nps_kit.messaging import Outgoing, Publisher, PublishError, client_options
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import read_all
from tests.support.fake_zendesk import FakeZendesk

Fault = Callable[[], Awaitable[float]]
#: Posts in flight at once (httpx's client keeps at most 100 connections).
SENDING = 50
#: The action states that say a dispatch has not happened yet.
PENDING = {"planned"}


@dataclass
class Target:
    """The running system, as the chaos suite reaches it from the outside."""

    ingest: str
    followup: str
    bootstrap_servers: str
    token: str
    mail: MailSink
    zendesk: FakeZendesk | None = None
    #: A bearer token of the identity provider that may read every case (an admin's).
    staff_token: str = ""


@dataclass
class Report:
    fault: str
    responses: int = 0
    accepted: int = 0
    detractors: int = 0
    without_case: int = 0
    duplicate_cases: int = 0
    emails: int = 0
    duplicate_emails: int = 0
    tickets: int = 0
    duplicate_tickets: int = 0
    unknown: int = 0
    poison: int = 0
    poison_in_dlq: int = 0
    poison_reasons: list[str] = field(default_factory=list)
    other_dlq: int = 0
    other_reasons: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None
    #: From the last response accepted until caught up (the lag the load itself leaves).
    after_load_seconds: float | None = None
    #: ingest's 503s with a Retry-After (the broker did not acknowledge: the sender retries).
    unavailable: int = 0
    #: Any other answer than 202 or those 503s (a 503 without Retry-After, a 500...).
    other_answers: list[str] = field(default_factory=list)
    #: Posts that got no answer at all (connection refused or reset, timed out).
    unanswered: int = 0

    HEADER = (
        "| fault | responses (accepted) | detractors without a case | duplicate cases "
        "| emails (duplicates) | tickets (duplicates) | `unknown` | poison in DLQ "
        "| other DLQ entries | caught up after the fault | after the last response "
        "| ingest's 503s with Retry-After / other answers / no answer |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )

    def row(self) -> str:
        recovered, after_load = (
            f"{seconds:.1f} s" if seconds is not None else "never"
            for seconds in (self.recovery_seconds, self.after_load_seconds)
        )
        return (
            f"| {self.fault} | {self.responses} ({self.accepted}) | {self.without_case} "
            f"| {self.duplicate_cases} | {self.emails} ({self.duplicate_emails}) "
            f"| {self.tickets} ({self.duplicate_tickets}) | {self.unknown} "
            f"| {self.poison_in_dlq}/{self.poison} | {self.other_dlq} | {recovered} "
            f"| {after_load} | {self.unavailable} / {len(self.other_answers)} / {self.unanswered} |"
        )


# --- faults ----------------------------------------------------------------------------------


def no_fault() -> Fault:
    async def fault() -> float:
        return time.monotonic()

    return fault


def database_outage(postgres: EmbeddedPostgres, seconds: float) -> Fault:
    """PostgreSQL crashes (SIGKILL to every process of it) and is back after `seconds`."""

    async def fault() -> float:
        await asyncio.to_thread(postgres.kill)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(postgres.start)
        return time.monotonic()

    return fault


def broker_pause(broker: EmbeddedBroker | ApacheKafka, seconds: float) -> Fault:
    """The broker freezes (SIGSTOP) for `seconds`: open connections, no answers."""

    async def fault() -> float:
        broker.pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            broker.resume()
        return time.monotonic()

    return fault


def kill_each(services: Mapping[str, ServiceProcess], *, every: float = 3.0) -> Fault:
    """SIGKILL each service in turn, started again at once (as Kubernetes would)."""

    async def fault() -> float:
        for service in services.values():
            service.kill()
            service.start()
            await asyncio.to_thread(service.wait_ready, timeout=120)
            await asyncio.sleep(every)
        return time.monotonic()

    return fault


async def _leader(cluster: ApacheKafkaCluster, topic: str, partition: int) -> ApacheKafka:
    """The node that leads `partition` of `topic` now."""
    admin = AIOKafkaAdminClient(**client_options(cluster.settings()))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    [leader] = [p["leader"] for p in described["partitions"] if p["partition"] == partition]
    return next(node for node in cluster.nodes if node.node_id == leader)


def leader_killed(
    cluster: ApacheKafkaCluster, seconds: float, *, topic: str = Topic.RESPONSES.value
) -> Fault:
    """The broker leading partition 0 of `topic` (where ingest writes) is SIGKILLed, and
    started again after `seconds`; the fault ends once it serves again."""

    async def fault() -> float:
        node = await _leader(cluster, topic, 0)
        node.kill()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(cluster.restart)
        return time.monotonic()

    return fault


def brokers_killed(
    cluster: ApacheKafkaCluster,
    seconds: float,
    *,
    count: int = 2,
    topic: str = Topic.RESPONSES.value,
) -> Fault:
    """`count` brokers SIGKILLed at once, the leader of partition 0 of `topic` among them,
    started again after `seconds`. With two of three gone no write can have the two in-sync
    replicas that `min.insync.replicas=2` asks for (nor does the controllers' quorum stand):
    ingest must answer 503 and acknowledge nothing it did not store."""

    async def fault() -> float:
        leader = await _leader(cluster, topic, 0)
        others = [node for node in cluster.nodes if node is not leader]
        for node in [leader, *others][:count]:
            node.kill()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(cluster.restart)
        return time.monotonic()

    return fault


# --- load ------------------------------------------------------------------------------------

POISON_KINDS = ("nul-byte", "oversized", "wrong-type")

#: When the chaos load's customers answered: at the start of the session, so that a re-post is
#: the same event, and recent, since followup does not act on answers older than its window.
ANSWERED = datetime.now(UTC).isoformat()


def response_body(customer: str, score: int) -> dict[str, Any]:
    return {
        "response_id": f"r-{customer}",
        "survey_id": "chaos",
        "customer": {"id": customer, "email": f"{customer}@example.com", "name": "Grace"},
        "score": score,
        "comment": "The export broke twice",
        "responded_at": ANSWERED,
    }


def poison_record(customer: str, kind: str) -> tuple[str, Outgoing]:
    """A record on nps.responses.v1 that can never be processed, as a producer that skips
    ingest's checks could write it: its event id and the message."""
    now = datetime.now(UTC)
    event = ResponseReceived.model_validate(
        {
            "response_id": ResponseReceived.derive_response_id("chaos", customer),
            "source": "chaos",
            "provider_response_id": customer,
            "survey_id": "chaos",
            "customer": {"id": customer, "email": f"{customer}@example.com"},
            "score": 2,
            "comment": "POISON",
            "responded_at": now,
            "received_at": now,
        }
    )
    message = encode(event, source="/chaos", time=now)
    value = message.value
    if kind == "nul-byte":
        value = value.replace(b'"POISON"', b'"bad\\u0000byte"')
    elif kind == "oversized":
        value = value.replace(b'"POISON"', json.dumps("x" * 20_000).encode())
    else:
        value = value.replace(b'"score":2', b'"score":"two"')
    assert value != message.value, kind
    return str(event.event_id()), Outgoing(
        Topic.RESPONSES.value, message.key, value, message.headers
    )


async def _post_until_accepted(
    client: httpx.AsyncClient, target: Target, load: "_Load", body: dict[str, Any], deadline: float
) -> bool:
    """As webhook senders do: retry until ingest acknowledges (202), the only recovery an
    outage of the broker ever needs. Every other answer is counted: a 503 with Retry-After is
    what a broker that does not acknowledge must give; anything else is a fault.

    At most `SENDING` posts are in flight at once, fewer than the client's connections: while
    ingest takes its 5 s to answer 503, hundreds of senders retrying at once would otherwise
    queue for the pool, and httpx's pool, once its waiters time out, was seen to open no
    connection again (every later request failed with PoolTimeout, the run counted nothing)."""
    while time.monotonic() < deadline:
        try:
            async with load.sending:
                answer = await client.post(
                    f"{target.ingest}/v1/responses",
                    json=body,
                    headers={"Authorization": f"Bearer {target.token}"},
                )
            if answer.status_code == 202:
                return True
            if answer.status_code == 503 and answer.headers.get("Retry-After", "").isdigit():
                load.unavailable += 1
            else:
                load.other_answers.append(f"{answer.status_code}: {answer.text[:200]}")
        except httpx.TransportError:
            load.unanswered += 1
        await asyncio.sleep(0.5)
    return False


async def _publish_until_acknowledged(
    publisher: Publisher, message: Outgoing, deadline: float
) -> None:
    while True:
        try:
            await publisher.send_many([message])
        except PublishError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        else:
            return


# --- counting --------------------------------------------------------------------------------


async def customer_cases(
    client: httpx.AsyncClient, target: Target, customer: str
) -> list[dict[str, Any]]:
    answer = await client.get(
        f"{target.followup}/v1/cases",
        params={"customer_id": customer},
        headers={"Authorization": f"Bearer {target.staff_token}"},
    )
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def is_settled(cases: list[dict[str, Any]]) -> bool:
    return bool(cases) and all(
        action["state"] not in PENDING
        for case in cases
        for action in case["actions"]
        if action["channel"] in ("email", "ticket")
    )


@dataclass
class _Load:
    run_id: str
    detractors: list[str] = field(default_factory=list)
    poison: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    last_accepted: float = 0.0
    unavailable: int = 0
    other_answers: list[str] = field(default_factory=list)
    unanswered: int = 0
    sending: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SENDING))


async def run(
    target: Target,
    fault: Fault,
    *,
    name: str,
    responses: int,
    rate: float,
    poison_every: int = 0,
    lead: float = 2.0,
    settle_timeout: float = 240.0,
) -> Report:
    """Post `responses` (every other one a detractor) at `rate` per second, inject `fault`
    `lead` seconds in, and count what happened. Every `poison_every`-th record (0: none) is
    a poison record written straight to the topic instead."""
    load = _Load(run_id=uuid.uuid4().hex[:6])
    kafka = KafkaSettings(bootstrap_servers=target.bootstrap_servers)
    deadline = time.monotonic() + settle_timeout + responses / rate
    async with httpx.AsyncClient(timeout=10) as client:
        faulting = asyncio.create_task(_after(lead, fault))
        await _post(
            client,
            target,
            load,
            responses=responses,
            rate=rate,
            poison_every=poison_every,
            deadline=deadline,
        )
        loaded = load.last_accepted
        # Counted from the end of the load, not of the fault: a fault the system rides out
        # (a broker of three lost) may last longer than the backlog does.
        catching_up = asyncio.create_task(_caught_up(client, target, load.detractors, deadline))
        fault_ended = await faulting
        recovered = await catching_up
        await asyncio.sleep(3)  # anything sent twice would arrive by now
        final = {c: await customer_cases(client, target, c) for c in load.detractors}
    report = Report(
        fault=name,
        responses=responses,
        accepted=load.accepted,
        detractors=len(load.detractors),
        poison=len(load.poison),
        recovery_seconds=max(0.0, recovered - fault_ended) if recovered else None,
        after_load_seconds=max(0.0, recovered - loaded) if recovered else None,
        unavailable=load.unavailable,
        other_answers=load.other_answers,
        unanswered=load.unanswered,
    )
    _count_cases(report, final, target)
    await _count_dead_letters(report, kafka, load)
    return report


async def _post(
    client: httpx.AsyncClient,
    target: Target,
    load: _Load,
    *,
    responses: int,
    rate: float,
    poison_every: int,
    deadline: float,
) -> None:
    publisher = Publisher(
        KafkaSettings(bootstrap_servers=target.bootstrap_servers), client_id="chaos"
    )
    await publisher.start()

    async def one(i: int) -> None:
        customer = f"chaos-{load.run_id}-{i}"
        if poison_every and i % poison_every == poison_every // 2:
            kind = POISON_KINDS[len(load.poison) % len(POISON_KINDS)]
            event_id, message = poison_record(customer, kind)
            load.poison[event_id] = kind
            await _publish_until_acknowledged(publisher, message, deadline)
            return
        score = 2 if i % 2 == 0 else 9
        if score <= 6:
            load.detractors.append(customer)
        accepted = await _post_until_accepted(
            client, target, load, response_body(customer, score), deadline
        )
        load.accepted += accepted  # after the await: `+= await` would lose concurrent counts
        load.last_accepted = max(load.last_accepted, time.monotonic())

    try:
        started = time.monotonic()
        posting = []
        for i in range(responses):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            posting.append(asyncio.create_task(one(i)))
        await asyncio.gather(*posting)
    finally:
        await publisher.stop()


async def _caught_up(
    client: httpx.AsyncClient, target: Target, detractors: list[str], deadline: float
) -> float | None:
    """When every detractor had a case with its email and ticket dispatched (None: never,
    before `deadline`)."""
    settled: set[str] = set()
    while time.monotonic() < deadline:
        for customer in [c for c in detractors if c not in settled]:
            try:
                cases = await customer_cases(client, target, customer)
            except httpx.HTTPError:
                break  # followup not ready yet
            if is_settled(cases):
                settled.add(customer)
        if len(settled) == len(detractors):
            return time.monotonic()
        await asyncio.sleep(1)
    return None


def _count_cases(report: Report, final: Mapping[str, list[dict[str, Any]]], target: Target) -> None:
    report.without_case = sum(1 for cases in final.values() if not cases)
    report.duplicate_cases = sum(max(0, len(cases) - 1) for cases in final.values())
    report.unknown = sum(
        1
        for cases in final.values()
        for case in cases
        for action in case["actions"]
        if action["state"] == "unknown"
    )
    customers = set(final)
    mails = Counter(
        address
        for m in target.mail.messages()
        if (address := str(m["To"]).split("<")[-1].rstrip(">").split("@")[0]) in customers
    )
    report.emails = sum(mails.values())
    report.duplicate_emails = sum(n - 1 for n in mails.values() if n > 1)
    if target.zendesk is not None:
        case_ids = {f"npsloop-case-{case['case_id']}" for cases in final.values() for case in cases}
        tickets = Counter(
            t["external_id"]
            for t in list(target.zendesk.tickets.values())
            if t.get("external_id") in case_ids
        )
        report.tickets = sum(tickets.values())
        report.duplicate_tickets = sum(n - 1 for n in tickets.values() if n > 1)


async def _count_dead_letters(report: Report, kafka: KafkaSettings, load: _Load) -> None:
    """Poison records are counted once each, whichever groups dead-lettered them
    (`dlq_group`): a poison `ResponseReceived` is scoring's to dead-letter; followup, which
    reads nps.responses.v1 for the opt-outs, skips it undecoded (before the sixth session on
    issue #20 it dead-lettered its own copy too)."""
    mark = f"chaos-{load.run_id}-".encode()
    dead_poison: set[str] = set()
    for topic in Topic:
        for record in await read_all(kafka, dlq(topic.value), partitions=3):
            headers = dict(record.headers)
            event_id = headers.get("ce_id", b"").decode()
            if event_id in load.poison:
                dead_poison.add(event_id)
                report.poison_reasons.append(
                    f"{load.poison[event_id]}: {headers.get('dlq_reason', b'').decode()[:200]}"
                    f" ({headers.get('dlq_group', b'').decode()})"
                )
            elif mark in (record.key or b"") + (record.value or b""):
                report.other_dlq += 1
                report.other_reasons.append(
                    f"{topic.value}: {headers.get('dlq_reason', b'').decode()[:300]}"
                    f" ({headers.get('dlq_group', b'').decode()})"
                )
    report.poison_in_dlq = len(dead_poison)


async def _after(lead: float, fault: Fault) -> float:
    await asyncio.sleep(lead)
    return await fault()
