"""The four services and the console as real processes on the shared test infrastructure."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nps_kit.devstack import free_port
from nps_kit.devstack.services import SERVICES, ServiceProcess, start_all
from tests.support import chaos
from tests.support.fake_collector import FakeCollector
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_zendesk import FakeZendesk
from tests.support.infra import Infra
from tests.support.serve import served

TOKEN = "e2e-token"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item (`item.rep_call`), so that a fixture can see
    whether its test failed (the browser tests save a screenshot then)."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


#: The Delighted source of the e2e system: its webhooks are signed with this API key.
DELIGHTED_KEY = "e2e-delighted-api-key"
SOURCES_FILE = """
sources:
  e2e-delighted:
    provider: delighted
    secrets:
      - env: E2E_DELIGHTED_KEY
"""


@dataclass
class System:
    services: dict[str, ServiceProcess]
    infra: Infra

    def url(self, name: str) -> str:
        return self.services[name].url

    def client(self, person: str = "admin@example.com") -> httpx.AsyncClient:
        """An HTTP client whose requests carry `person`'s bearer token (an admin's by
        default: every team's cases); a request's own `Authorization` (ingest's token)
        replaces it."""
        return httpx.AsyncClient(timeout=10, headers=self.infra.bearer(person))

    def chaos_target(self, zendesk: FakeZendesk) -> "chaos.Target":
        """This system as the chaos suite reaches it from the outside."""
        return chaos.Target(
            ingest=self.url("ingest"),
            followup=self.url("followup"),
            bootstrap_servers=self.infra.bootstrap_servers,
            token=TOKEN,
            mail=self.infra.mail,
            zendesk=zendesk,
            staff_token=self.infra.token("admin@example.com"),
        )

    def diagnosis(self, *, lines: int = 12) -> str:
        """What each service says about itself, for a failure's message: alive or its exit
        code, its /readyz answer, and the last warnings and errors in its log."""
        parts = []
        for name, service in self.services.items():
            process = service.process
            state = "running" if service.alive() else f"exited ({process and process.poll()})"
            try:
                ready = httpx.get(f"{service.url}/readyz", timeout=2).text
            except httpx.HTTPError as exc:
                ready = repr(exc)
            log = service.log_path.read_text(errors="replace").splitlines()
            trouble = [
                line[:400]
                for line in log
                if any(w in line for w in ("WARNING", "ERROR", "Traceback", '"warning"', '"error"'))
            ]
            parts.append(
                f"--- {name}: {state}; readyz: {ready[:600]}\n" + "\n".join(trouble[-lines:])
            )
        return "\n".join(parts)

    def restart(self, name: str) -> None:
        service = self.services[name]
        service.stop()
        service.start()
        service.wait_ready(timeout=90)


#: The fake Zendesk's webhook back to notify is signed with this secret.
ZENDESK_WEBHOOK_SECRET = "e2e-zendesk-webhook-secret"


@pytest.fixture(scope="session")
def zendesk() -> Iterator[tuple[FakeZendesk, str]]:
    """The helpdesk of the e2e system: a fake Zendesk over real HTTP, and its URL."""
    fake = FakeZendesk()
    with served(fake.app()) as url:
        yield fake, url


@pytest.fixture(scope="session")
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    """The SMS provider of the e2e system: a fake Twilio over real HTTP, and its URL."""
    fake = FakeTwilio()
    with served(fake.app()) as url:
        yield fake, url


@pytest.fixture(scope="session")
def collector() -> Iterator[FakeCollector]:
    """Where the e2e system's services export their traces (OTLP/HTTP)."""
    fake = FakeCollector()
    with served(fake.app()) as url:
        fake.url = url
        yield fake


def system_env(
    infra: Infra, *, zendesk: tuple[FakeZendesk, str], twilio: tuple[FakeTwilio, str], logs: Path
) -> dict[str, str]:
    """The environment of the e2e system's services (the chaos bench starts the same)."""
    sources = logs / "sources.yaml"
    sources.write_text(SOURCES_FILE)
    return {
        **infra.env(),
        "INGEST_API_TOKENS": json.dumps({"e2e": TOKEN}),
        "INGEST_SOURCES_FILE": str(sources),
        "E2E_DELIGHTED_KEY": DELIGHTED_KEY,
        "LOG_FORMAT": "json",
        "FOLLOWUP_POLICY_FILE": str(Path(__file__).with_name("policy.yaml")),
        "FOLLOWUP_SWEEP_INTERVAL_SECONDS": "0.5",
        "ZENDESK_BASE_URL": zendesk[1],
        "ZENDESK_EMAIL": zendesk[0].email,
        "ZENDESK_API_TOKEN": zendesk[0].api_token,
        "ZENDESK_WEBHOOK_SECRETS": json.dumps([ZENDESK_WEBHOOK_SECRET]),
        "ZENDESK_RATE_PER_SECOND": "1000",
        "TWILIO_BASE_URL": twilio[1],
        "TWILIO_ACCOUNT_SID": twilio[0].account_sid,
        "TWILIO_AUTH_TOKEN": twilio[0].auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_RATE_PER_SECOND": "1000",
    }


@pytest.fixture(scope="session")
def system(
    infra: Infra,
    zendesk: tuple[FakeZendesk, str],
    twilio: tuple[FakeTwilio, str],
    collector: FakeCollector,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    logs: Path = tmp_path_factory.mktemp("logs")
    common = {
        **system_env(infra, zendesk=zendesk, twilio=twilio, logs=logs),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    services = start_all(
        common,
        ports={name: free_port() for name in SERVICES},
        log_dir=logs,
        ready_timeout=90,
    )
    try:
        yield System(services=services, infra=infra)
    finally:
        for service in services.values():
            service.stop()
