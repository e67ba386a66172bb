"""No customer's email, name, phone or comment in any log line of any service, whatever fails:
a mail server that refuses the recipient (quoting the address), SMS and helpdesk providers
that refuse or are down, a record dead-lettered, a response whose storage fails, the
database gone and back.

The four services run as processes on infrastructure of their own (the test stops their
database), logging JSON at DEBUG; their logs are then searched for distinctive canary values.
"""

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.fernet import Fernet

from nps_events import (
    ActionResultReported,
    CreateTicket,
    Customer,
    Event,
    ResponseReceived,
    Segment,
    SendEmail,
    SendSms,
    TicketPriority,
    Topic,
    decode,
    encode,
)
from nps_kit.devstack import EmbeddedPostgres, free_port
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.devstack.services import SERVICES, ServiceProcess, prepare, start_all
from nps_kit.messaging import Outgoing, Publisher
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import read_all
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_zendesk import FakeZendesk
from tests.support.infra import new_broker
from tests.support.polling import eventually
from tests.support.serve import served

pytestmark = pytest.mark.e2e

TOKEN = "pii-token"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

#: Values no log line may contain, in any case. Unmistakable: nothing else says them.
EMAIL = "zebulon.quillfeather@canary-pii.example"
NAME = "Zebulon Quillfeather"
PHONE = "+15557391842"
COMMENT = "Octarine marmalade exploded in my dashboard"
CANARIES = (EMAIL, NAME, PHONE, PHONE.removeprefix("+"), COMMENT, "Quillfeather", "Octarine")


class _RefuseRecipients:
    """A mail server that refuses every recipient, quoting the address back, as real
    servers do ("550 5.1.1 <…>: Recipient address rejected")."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: user {NAME} unknown"


@dataclass
class Isolated:
    services: dict[str, ServiceProcess]
    postgres: EmbeddedPostgres
    bootstrap_servers: str
    twilio: FakeTwilio
    zendesk: FakeZendesk
    logs: Path
    idp: ServedIdentityProvider

    def url(self, name: str) -> str:
        return self.services[name].url

    def client(self) -> httpx.AsyncClient:
        """A client with an admin's bearer token (ingest's requests bring their own)."""
        token = self.idp.provider.person_token("admin@example.com")
        return httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    tmp = tmp_path_factory.mktemp("pii")
    logs = tmp / "logs"
    broker = new_broker(tmp)
    # Not under pytest's temporary folder: another pytest session on the machine makes that
    # private to root again (0700), and the unprivileged server user could not start in it
    # (tests/support/infra.py does the same).
    data = Path(tempfile.mkdtemp(prefix="npsloop-test-postgres-"))
    postgres = EmbeddedPostgres(data_dir=data, port=free_port(), durable=False)
    smtp = Controller(_RefuseRecipients(), hostname="127.0.0.1", port=free_port())
    twilio, zendesk = FakeTwilio(), FakeZendesk()
    idp = ServedIdentityProvider(key_file=tmp / "idp" / "key.pem", port=free_port())
    broker.start()
    postgres.start()
    idp.start()
    smtp.start()
    try:
        with served(twilio.app()) as twilio_url, served(zendesk.app()) as zendesk_url:
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "DATABASE_URL": postgres.url,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "AUTH_ISSUER": idp.issuer,
                "CONSOLE_SESSION_KEYS": Fernet.generate_key().decode(),
                "INGEST_API_TOKENS": json.dumps({"pii": TOKEN}),
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "DEBUG",
                "FOLLOWUP_POLICY_FILE": str(Path(__file__).with_name("policy.yaml")),
                "FOLLOWUP_SWEEP_INTERVAL_SECONDS": "0.5",
                "NOTIFY_RETRY_DELAY_SECONDS": "0.5",
                "ZENDESK_BASE_URL": zendesk_url,
                "ZENDESK_EMAIL": zendesk.email,
                "ZENDESK_API_TOKEN": zendesk.api_token,
                "ZENDESK_RATE_PER_SECOND": "1000",
                "TWILIO_BASE_URL": twilio_url,
                "TWILIO_ACCOUNT_SID": twilio.account_sid,
                "TWILIO_AUTH_TOKEN": twilio.auth_token,
                "TWILIO_FROM_NUMBER": "+15005550006",
                "TWILIO_RATE_PER_SECOND": "1000",
            }
            prepare(env, partitions=1)
            services = start_all(
                env, ports={n: free_port() for n in SERVICES}, log_dir=logs, ready_timeout=90
            )
            try:
                yield Isolated(
                    services, postgres, broker.bootstrap_servers, twilio, zendesk, logs, idp
                )
            finally:
                for service in services.values():
                    service.stop()
    finally:
        idp.stop()
        smtp.stop()
        postgres.stop()
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


def _customer(**changes: Any) -> Customer:
    return Customer(
        id=f"pii-{uuid.uuid4().hex[:8]}", email=EMAIL, phone=PHONE, name=NAME, **changes
    )


def _actions() -> list[Event]:
    def common() -> dict[str, Any]:
        return {"action_id": uuid.uuid4(), "case_id": uuid.uuid4(), "customer": _customer()}

    ticket = {
        "priority": TicketPriority.HIGH,
        "title": f"NPS detractor {NAME}",
        "score": 2,
        "segment": Segment.DETRACTOR,
        "requested_at": NOW,
        "comment": COMMENT,
    }
    return [
        SendEmail(**common(), template="detractor_apology", score=2, requested_at=NOW),
        SendSms(**common(), template="detractor_apology", requested_at=NOW),
        SendSms(**common(), template="detractor_apology", requested_at=NOW),
        CreateTicket(**common(), **ticket),
    ]


def _nul_in_comment(customer: Customer) -> Outgoing:
    valid = encode(_a_response(customer, COMMENT), source="/pii-test", time=NOW)
    nul = valid.value.replace(json.dumps(COMMENT).encode(), json.dumps(f"{COMMENT}\x00").encode())
    assert nul != valid.value
    return Outgoing(Topic.RESPONSES.value, valid.key, nul, valid.headers)


async def _publish(system: Isolated, messages: list[Outgoing]) -> None:
    publisher = Publisher(
        KafkaSettings(bootstrap_servers=system.bootstrap_servers), client_id="pii"
    )
    await publisher.start()
    try:
        await publisher.send_many(messages)
    finally:
        await publisher.stop()


def _outgoing(event: Event) -> Outgoing:
    message = encode(event, source="/pii-test", time=NOW)
    return Outgoing(event.topic.value, message.key, message.value, message.headers)


def _a_response(customer: Customer, comment: str) -> ResponseReceived:
    provider_id = f"pii-{uuid.uuid4()}"
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id("pii", provider_id),
        source="pii",
        provider_response_id=provider_id,
        survey_id="pii",
        customer=customer,
        score=2,
        comment=comment,
        responded_at=NOW,
        received_at=NOW,
    )


def _log_text(system: Isolated, name: str) -> str:
    path = system.logs / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def _results(system: Isolated, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    records = await read_all(
        KafkaSettings(bootstrap_servers=system.bootstrap_servers), Topic.ACTION_RESULTS.value
    )
    found = set()
    for record in records:
        event = decode(record.headers, record.value).data
        if isinstance(event, ActionResultReported) and event.action_id in ids:
            found.add(event.action_id)
    return found


def _leaks(system: Isolated) -> list[str]:
    found = []
    for name in SERVICES:
        for number, line in enumerate(_log_text(system, name).splitlines(), 1):
            # JSON escapes nothing in the canaries, so the raw text is what a reader sees.
            hits = [c for c in CANARIES if c.lower() in line.lower()]
            if hits:
                found.append(f"{name}.log:{number}: {hits}: {line[:600]}")
    return found


async def test_no_customer_data_in_any_log_line_whatever_fails(isolated: Isolated) -> None:
    system = isolated
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with system.client() as client:
        # 1. A detractor through the whole pipeline; the mail server refuses their address.
        customer_id = f"pii-{uuid.uuid4().hex[:8]}"
        body = {
            "response_id": f"r-{uuid.uuid4()}",
            "survey_id": "e2e",
            "customer": {"id": customer_id, "email": EMAIL, "name": NAME, "phone": PHONE},
            "score": 2,
            "comment": COMMENT,
            "responded_at": datetime.now(UTC).isoformat(),
        }
        answer = await client.post(f"{system.url('ingest')}/v1/responses", json=body, headers=auth)
        assert answer.status_code == 202, answer.text
        # A refused one too: the 422 names the field, the log does not quote the value.
        bad = {**body, "customer": {**body["customer"], "email": f"{NAME} <{EMAIL}>, x@y.z"}}
        refused = await client.post(f"{system.url('ingest')}/v1/responses", json=bad, headers=auth)
        assert refused.status_code == 422

        async def email_tried() -> list[dict[str, Any]]:
            cases = await client.get(
                f"{system.url('followup')}/v1/cases", params={"customer_id": customer_id}
            )
            items: list[dict[str, Any]] = cases.json()["items"]
            return items

        await eventually(
            email_tried,
            until=lambda cases: (
                bool(cases)
                and any(
                    a["channel"] == "email" and a["state"] != "planned" for a in cases[0]["actions"]
                )
            ),
            timeout=60,
            what="the case, its email tried against the refusing mail server",
        )

        # 2. Providers that refuse or fail: SMS not a mobile number, SMS down, helpdesk down.
        system.twilio.fail_next(400, code=21614)
        system.twilio.fail_next(503)
        system.zendesk.fail_next(503)
        actions = _actions()
        await _publish(system, [_outgoing(a) for a in actions])
        ids = {a.action_id for a in actions}  # type: ignore[attr-defined]
        await eventually(
            lambda: _results(system, ids),
            until=lambda found: found == ids,
            timeout=90,
            what="a result for each action",
        )

        # 3. A record that is not a valid event, with customer data in it: dead-lettered.
        valid = encode(_a_response(_customer(), COMMENT), source="/pii-test", time=NOW)
        data = json.loads(valid.value)
        data["customer"]["phone"] = f"call {NAME} at {PHONE}"
        data["score"] = 11
        await _publish(
            system,
            [Outgoing(Topic.RESPONSES.value, valid.key, json.dumps(data).encode(), valid.headers)],
        )
        await eventually(
            lambda: asyncio.sleep(0, _log_text(system, "scoring")),
            until=lambda text: "consumer.dead_lettered" in text,
            what="scoring dead-lettering the invalid record",
        )

        # 4. The database gone while responses arrive and people read cases, then back.
        await asyncio.to_thread(system.postgres.stop)
        marks = {name: len(_log_text(system, name)) for name in ("scoring", "followup")}
        answer = await client.post(
            f"{system.url('ingest')}/v1/responses",
            json={**body, "response_id": f"r-{uuid.uuid4()}"},
            headers=auth,
        )
        assert answer.status_code == 202, answer.text
        try:
            gone = await client.get(
                f"{system.url('followup')}/v1/cases", params={"customer_id": customer_id}
            )
            assert gone.status_code >= 500
        except httpx.TransportError:
            pass  # followup already exited over the outage (its log says so)
        await eventually(
            lambda: asyncio.sleep(0, {n: len(_log_text(system, n)) for n in marks}),
            until=lambda sizes: all(sizes[n] > marks[n] for n in marks),
            what="scoring and followup logging the outage",
        )
        await asyncio.to_thread(system.postgres.start)
        # A service that exited over the outage is started again, as the dev stack's
        # supervisor and Kubernetes do.
        for service in system.services.values():
            if not service.alive():
                await asyncio.to_thread(service.restart)
                await asyncio.to_thread(service.wait_ready, timeout=90)

        # 5. A response with a NUL in its comment, as a producer that skips ingest could write
        # it (the contract refuses it, and PostgreSQL could not store it): dead-lettered.
        mark = len(_log_text(system, "scoring"))
        await _publish(system, [_nul_in_comment(_customer())])
        await eventually(
            lambda: asyncio.sleep(0, _log_text(system, "scoring")[mark:]),
            until=lambda text: "dead_lettered" in text,
            timeout=60,
            what="scoring failing to store the response",
        )

    for service in system.services.values():
        service.stop()  # flushes what each process still had to say
    assert all(_log_text(system, name) for name in SERVICES)
    leaks = _leaks(system)
    assert not leaks, "customer data in the logs:\n" + "\n".join(leaks)
