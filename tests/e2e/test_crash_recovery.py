"""Killing any one service with SIGKILL while responses flow, then starting it again, loses no
case and sends no email twice."""

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from nps_kit.devstack.services import SERVICES
from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import AUTH, a_response, cases_of, email_state
from tests.support.polling import eventually

RESPONSES = 12


async def post_like_a_webhook_sender(
    client: httpx.AsyncClient, url: str, body: dict[str, object]
) -> None:
    """Retry until accepted, as webhook senders do: the only recovery ingest ever needs."""
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = await client.post(url, json=body, headers=AUTH)
            if answer.status_code == 202:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"ingest never accepted {body['response_id']}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("victim", SERVICES)
async def test_sigkill_loses_no_case_and_sends_no_email_twice(system: System, victim: str) -> None:
    run = uuid.uuid4().hex[:6]
    customers = [f"kill-{victim}-{run}-{i}" for i in range(RESPONSES)]
    url = f"{system.url('ingest')}/v1/responses"
    async with system.client() as client:
        first_half = customers[: RESPONSES // 2]
        await asyncio.gather(
            *(post_like_a_webhook_sender(client, url, a_response(c)) for c in first_half)
        )
        system.services[victim].kill()
        sending = asyncio.gather(
            *(
                post_like_a_webhook_sender(client, url, a_response(c))
                for c in customers[RESPONSES // 2 :]
            )
        )
        await asyncio.to_thread(system.restart, victim)
        await sending

        async def settled() -> list[list[dict[str, Any]]]:
            return [await cases_of(client, system, c) for c in customers]

        all_cases = await eventually(
            settled,
            until=lambda per_customer: all(
                len(cases) == 1 and email_state(cases[0]) != "planned" for cases in per_customer
            ),
            timeout=120,
            what="one case per customer, each with its email dispatched",
        )

    states = Counter(email_state(cases[0]) for cases in all_cases)
    # `unknown` is the honest outcome for an email interrupted mid-send: never sent twice.
    assert set(states) <= {"sent", "unknown"}, states
    mails = Counter(
        str(m["To"]).split("<")[-1].split("@")[0]
        for m in system.infra.mail.messages()
        if f"-{run}-" in str(m["To"])
    )
    assert all(count == 1 for count in mails.values()), mails
    assert sum(mails.values()) == states["sent"]
    assert sum(mails.values()) >= RESPONSES - 1
