"""The loop through the helpdesk, as the customer-success team lives it: a detractor's ticket
opens in the helpdesk (a fake Zendesk over real HTTP that checks Zendesk's documented
format), an agent solves it there, Zendesk's signed webhook tells npsloop, and the case shows
it; an escalation raises the ticket's priority."""

import asyncio
import uuid
from typing import Any

from tests.e2e.conftest import ZENDESK_WEBHOOK_SECRET, System
from tests.e2e.test_detractor_journey import a_response, cases_of, post
from tests.support.fake_zendesk import FakeZendesk
from tests.support.polling import eventually


def ticket_action(case: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in case["actions"] if a["channel"] == "ticket"]
    return action


async def test_a_ticket_solved_in_the_helpdesk_shows_on_the_case(
    system: System, zendesk: tuple[FakeZendesk, str]
) -> None:
    fake, _ = zendesk
    customer = f"hd-{uuid.uuid4().hex[:8]}"
    async with system.client() as client:
        assert (await post(client, system, a_response(customer))).status_code == 202
        [case] = await eventually(
            lambda: cases_of(client, system, customer),
            until=lambda cases: bool(cases) and ticket_action(cases[0])["state"] == "sent",
            what="the case with its ticket created in the helpdesk",
        )
        ticket_id = int(ticket_action(case)["provider_message_id"])
        ticket = fake.tickets[ticket_id]
        assert ticket["requester"] == {"email": f"{customer}@example.com", "name": "Grace"}
        assert ticket["priority"] in ("high", "urgent")
        assert "It broke <b>twice</b>" in ticket["description"]  # plain text, kept as written
        # The case's link: the console's case page (the e2e system's NOTIFY_CASE_URL).
        assert f"{system.url('console')}/cases/{case['case_id']}" in ticket["description"]

        webhook = f"{system.url('notify')}/v1/helpdesk/zendesk"
        forged = await asyncio.to_thread(
            fake.solve, ticket_id, webhook_url=webhook, secret="not-the-secret"
        )
        assert forged.status_code == 401
        assert forged.headers["content-type"] == "application/problem+json"
        answer = await asyncio.to_thread(
            fake.solve, ticket_id, webhook_url=webhook, secret=ZENDESK_WEBHOOK_SECRET
        )
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"recorded": True}

        async def timeline() -> list[dict[str, Any]]:
            found = await client.get(f"{system.url('followup')}/v1/cases/{case['case_id']}")
            entries: list[dict[str, Any]] = found.json()["timeline"]
            return [e for e in entries if e["kind"] == "ticket_status"]

        [entry] = await eventually(
            timeline, until=bool, what="the helpdesk's solve on the case's timeline"
        )
        assert entry["details"]["status"] == "solved"
        assert entry["details"]["ticket_id"] == str(ticket_id)
        assert entry["details"]["helpdesk"] == "zendesk"


async def test_the_helpdesk_webhook_ignores_tickets_npsloop_did_not_open(
    system: System, zendesk: tuple[FakeZendesk, str]
) -> None:
    fake, _ = zendesk
    fake.tickets[999_999] = {"id": 999_999, "status": "open"}  # opened by someone else
    answer = await asyncio.to_thread(
        fake.solve,
        999_999,
        webhook_url=f"{system.url('notify')}/v1/helpdesk/zendesk",
        secret=ZENDESK_WEBHOOK_SECRET,
    )
    assert answer.status_code == 202
    assert answer.json() == {
        "recorded": False,
        "ignored": "ticket 999999 was not opened by npsloop",
    }
