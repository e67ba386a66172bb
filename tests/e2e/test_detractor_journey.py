"""A detractor's response travels ingest → scoring → followup → notify, through public
interfaces only: HTTP in, the SMTP sink and the followup API out."""

import asyncio
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TOKEN, System
from tests.support.polling import eventually

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: When the customers answered: at the start of the session (a re-post is the same event) and
#: recent, since followup does not act on answers older than its window.
ANSWERED = datetime.now(UTC).isoformat()


def a_response(
    customer_id: str, *, score: int = 2, response_id: str | None = None
) -> dict[str, Any]:
    return {
        "response_id": response_id or f"r-{uuid.uuid4()}",
        "survey_id": "e2e",
        "customer": {"id": customer_id, "email": f"{customer_id}@example.com", "name": "Grace"},
        "score": score,
        "comment": "It broke <b>twice</b>",
        "responded_at": ANSWERED,
    }


def email_state(case: dict[str, Any]) -> str:
    """The state of the case's email to the customer (its first email action)."""
    return str(next(a["state"] for a in case["actions"] if a["channel"] == "email"))


def emails_to(system: System, customer_id: str) -> list[EmailMessage]:
    return [m for m in system.infra.mail.messages() if f"{customer_id}@example.com" in str(m["To"])]


async def cases_of(
    client: httpx.AsyncClient, system: System, customer_id: str
) -> list[dict[str, Any]]:
    answer = await client.get(
        f"{system.url('followup')}/v1/cases", params={"customer_id": customer_id}
    )
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def _timeline(system: System, case_id: str) -> list[dict[str, Any]]:
    async with system.client() as client:
        answer = await client.get(f"{system.url('followup')}/v1/cases/{case_id}")
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["timeline"]
    return entries


async def post(client: httpx.AsyncClient, system: System, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{system.url('ingest')}/v1/responses", json=body, headers=AUTH)


async def test_detractor_gets_an_email_and_a_case(system: System) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    async with system.client() as client:
        answer = await post(client, system, a_response(customer))
        assert answer.status_code == 202, answer.text

        mails = await eventually(
            lambda: asyncio.sleep(0, emails_to(system, customer)),
            until=bool,
            what="the apology email",
        )
        [case] = await eventually(
            lambda: cases_of(client, system, customer),
            until=lambda cases: (
                bool(cases)
                and {a["channel"]: a["state"] for a in cases[0]["actions"]}
                == {"email": "sent", "ticket": "sent", "staff": "sent"}
            ),
            what="the case with its email, ticket and owner's notice marked sent",
        )
    [mail] = mails
    assert case["segment"] == "detractor"
    assert case["status"] == "open"
    assert case["response_id"] == answer.json()["response_id"]
    assert case["customer"]["email"] == f"{customer}@example.com"
    [action] = [a for a in case["actions"] if a["channel"] == "email"]
    assert action["template"] == "detractor_acknowledgement"
    assert action["provider_message_id"] == mail["Message-ID"]
    [ticket] = [a for a in case["actions"] if a["channel"] == "ticket"]
    assert ticket["provider_message_id"]  # the helpdesk's ticket id
    # Why: the rule that matched, the other detractor rule and why it did not, the calendar
    # the deadline was counted in.
    opened = (await _timeline(system, case["case_id"]))[0]
    assert (opened["kind"], opened["by"]["rule"], opened["details"]["rule"]) == (
        "opened",
        "detractor",
        "detractor",
    )
    assert opened["details"]["rule_index"] == 0
    assert opened["details"]["considered"] == [
        {
            "rule": "detractor-breach-drill",
            "index": 3,
            "outcome": "survey is 'e2e', not one of ['e2e-breach']",
        }
    ]
    assert opened["details"]["deadline"] == {
        "contact_within": "2 business days",
        "team": "customer-success",
        "timezone": "Europe/London",
        "business_days": ["mon", "tue", "wed", "thu", "fri"],
        "business_hours": "09:00-17:00",
        "holidays": "GB",
    }
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    assert "It broke &lt;b&gt;twice&lt;/b&gt;" in html.get_content()

    async with system.client() as client:
        one = await client.get(f"{system.url('followup')}/v1/cases/{case['case_id']}")
        assert one.status_code == 200
        # The list leaves timelines and ladders out; business seconds are as of each answer.
        alone = {**one.json(), "timeline": [], "ladder": [], "business_seconds_left": None}
        assert alone == {**case, "business_seconds_left": None}
        assert [e["kind"] for e in one.json()["timeline"]] == ["opened", "assigned"]
        decision = await client.get(f"{system.url('followup')}/v1/responses/{case['response_id']}")
        assert decision.json() == {
            "response_id": case["response_id"],
            "acted_on": True,
            "case_id": case["case_id"],
        }
        nps = (
            await client.get(f"{system.url('scoring')}/v1/nps", params={"survey_id": "e2e"})
        ).json()
        assert nps["detractors"] >= 1


async def test_a_repost_yields_one_case_and_one_email_and_a_later_answer_joins_it(
    system: System,
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    first = a_response(customer)
    async with system.client() as client:
        answers = [await post(client, system, first) for _ in range(2)]
        assert [a.status_code for a in answers] == [202, 202]
        assert answers[0].json() == answers[1].json()
        # A later response of the same customer travels the same partitions behind the
        # duplicate; it joins the open case (no second case, no second email). Once it shows
        # on the case, the duplicate has been through every service.
        await post(client, system, a_response(customer, score=5))
        [case] = await eventually(
            lambda: cases_of(client, system, customer),
            until=lambda cases: (
                len(cases) == 1
                and cases[0]["latest_score"] == 5
                and email_state(cases[0]) == "sent"
            ),
            what="the later response on the one case, its email sent",
        )
    assert case["response_id"] == answers[0].json()["response_id"]
    assert len(emails_to(system, customer)) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "title"),
    [
        (
            b'{"response_id": "r-1", ',
            {**AUTH, "Content-Type": "application/json"},
            400,
            "Malformed JSON",
        ),
        (None, AUTH, 422, "Invalid request"),
        (None, {"Authorization": "Bearer wrong"}, 401, "Unauthorized"),
    ],
    ids=["malformed", "score-11", "wrong-token"],
)
async def test_bad_input_gets_a_problem_and_reaches_no_one(
    system: System, body: bytes | None, headers: dict[str, str], status: int, title: str
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    async with system.client() as client:
        if body is None:
            payload = a_response(customer, score=11 if status == 422 else 2)
            answer = await client.post(
                f"{system.url('ingest')}/v1/responses", json=payload, headers=headers
            )
        else:
            answer = await client.post(
                f"{system.url('ingest')}/v1/responses", content=body, headers=headers
            )
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == title
        # The same customer's next (good) response overtakes nothing: when its case exists,
        # a bad one would have been processed too had it reached the broker.
        assert (await post(client, system, a_response(customer))).status_code == 202
        cases = await eventually(
            lambda: cases_of(client, system, customer), until=bool, what="the good case"
        )
    assert len(cases) == 1
