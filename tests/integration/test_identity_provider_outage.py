"""The identity provider being away never takes a service down (issue #13): followup, a real
process, starts while the provider does not answer (alive, not ready, saying why; tokens
refused with the reason), becomes ready by itself once the provider answers, and keeps
accepting tokens with the keys it fetched when the provider goes away again."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nps_kit.devstack import free_port
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.devstack.services import ServiceProcess
from tests.support.infra import Infra


@pytest.fixture
def idp_port() -> int:
    return free_port()


@pytest.fixture
def followup(infra: Infra, tmp_path: Path, idp_port: int) -> Iterator[ServiceProcess]:
    port = free_port()
    service = ServiceProcess(
        name="followup",
        port=port,
        env={
            **infra.env(),
            "FOLLOWUP_PORT": str(port),
            "FOLLOWUP_CONSUMER_GROUP": f"idp-outage-{port}",
            "AUTH_ISSUER": f"http://127.0.0.1:{idp_port}",  # nothing listens there yet
            "AUTH_REFRESH_INTERVAL_SECONDS": "1",
        },
        log_path=tmp_path / "followup.log",
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def _poll(what: str, check: object, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()  # type: ignore[operator]
            if isinstance(last, httpx.Response):
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what}: {last!r}")


def test_a_service_starts_and_recovers_without_the_identity_provider(
    followup: ServiceProcess, tmp_path: Path, idp_port: int
) -> None:
    idp = ServedIdentityProvider(key_file=tmp_path / "idp" / "key.pem", port=idp_port)
    bearer = {"Authorization": f"Bearer {idp.provider.person_token('cs-lead@example.com')}"}

    def not_ready_for_the_provider() -> httpx.Response | None:
        answer = httpx.get(f"{followup.url}/readyz", timeout=2)
        checks = answer.json().get("checks", {})
        return answer if "no signing keys" in checks.get("identity_provider", "") else None

    # 1. The provider does not answer: followup is alive, not ready, and says why.
    answer = _poll("readiness naming the identity provider", not_ready_for_the_provider)
    assert answer.status_code == 503
    assert httpx.get(f"{followup.url}/livez", timeout=2).status_code == 200
    refused = httpx.get(f"{followup.url}/v1/policy", headers=bearer, timeout=5)
    assert refused.status_code == 401
    assert "no key" in refused.headers["www-authenticate"]

    # 2. It answers: followup becomes ready by itself and accepts the token.
    idp.start()
    try:
        _poll(
            "ready once the provider answers",
            lambda: r if (r := httpx.get(f"{followup.url}/readyz", timeout=2)).is_success else None,
        )
        assert httpx.get(f"{followup.url}/v1/policy", headers=bearer, timeout=5).status_code == 200
    finally:
        idp.stop()

    # 3. It goes away again: the keys already fetched keep working, and followup stays ready.
    another = {"Authorization": f"Bearer {idp.provider.person_token('alex@example.com')}"}
    assert httpx.get(f"{followup.url}/v1/cases", headers=another, timeout=5).status_code == 200
    assert httpx.get(f"{followup.url}/readyz", timeout=2).status_code == 200
