"""SIGTERM (what Kubernetes sends) drains a service: it finishes its batch in flight, commits,
and exits 0; started again, it picks up where it left off."""

import uuid

import pytest

from nps_kit.devstack.services import SERVICES
from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import AUTH, a_response, cases_of, email_state
from tests.support.polling import eventually


@pytest.mark.parametrize("name", SERVICES)
async def test_sigterm_exits_cleanly_and_the_service_resumes(system: System, name: str) -> None:
    service = system.services[name]
    assert service.stop() == 0
    service.start()
    service.wait_ready(timeout=90)
    customer = f"term-{name}-{uuid.uuid4().hex[:6]}"
    async with system.client() as client:
        answer = await client.post(
            f"{system.url('ingest')}/v1/responses", json=a_response(customer), headers=AUTH
        )
        assert answer.status_code == 202
        await eventually(
            lambda: cases_of(client, system, customer),
            until=lambda cases: len(cases) == 1 and email_state(cases[0]) == "sent",
            timeout=60,
            what="the case with its email sent",
        )
