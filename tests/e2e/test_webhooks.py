"""A survey tool's own webhooks through the whole system: Delighted posts the score first and
the comment later; a redelivery changes nothing; the late comment lands on the existing case."""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import DELIGHTED_KEY, System
from tests.e2e.test_detractor_journey import cases_of, emails_to
from tests.support.polling import eventually

ANSWERED = int(time.time())


def delighted(event_type: str, *, person: str, response: str, comment: str | None) -> bytes:
    return json.dumps(
        {
            "event_type": event_type,
            "event_id": uuid.uuid4().hex,
            "event_data": {
                "id": response,
                "person": {"id": person, "email": f"{person}@example.com", "name": "Charlie"},
                "survey_type": "nps",
                "score": 3,
                "comment": comment,
                # Answered just now: followup does not act on an answer older than its window.
                "created_at": ANSWERED,
                "updated_at": ANSWERED + 600,
                "person_properties": None,
                "notes": [],
                "tags": [],
                "additional_answers": [],
            },
        }
    ).encode()


async def post_signed(client: httpx.AsyncClient, system: System, body: bytes) -> httpx.Response:
    signature = hmac.new(DELIGHTED_KEY.encode(), body, hashlib.sha256).hexdigest()
    return await client.post(
        f"{system.url('ingest')}/v1/webhooks/e2e-delighted",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Delighted-Webhook-Signature": f"sha256={signature}",
        },
    )


async def test_delighted_score_then_late_comment_is_one_case_with_the_comment(
    system: System,
) -> None:
    person = f"p-{uuid.uuid4().hex[:8]}"
    response = f"r-{uuid.uuid4().hex[:8]}"
    created = delighted("survey_response.created", person=person, response=response, comment=None)
    updated = delighted(
        "survey_response.updated", person=person, response=response, comment="Billing is a mess"
    )
    async with system.client() as client:
        first = await post_signed(client, system, created)
        assert first.status_code == 202, first.text
        replay = await post_signed(client, system, created)
        assert replay.json() == first.json()
        [case] = await eventually(
            lambda: cases_of(client, system, person),
            until=lambda cases: (
                bool(cases)
                and any(
                    a["channel"] == "email" and a["state"] == "sent" for a in cases[0]["actions"]
                )
            ),
            what="the case for the Delighted response, its email sent",
        )
        assert case["comment"] is None
        late = await post_signed(client, system, updated)
        assert late.status_code == 202
        assert (
            late.json()["accepted"][0]["response_id"] == first.json()["accepted"][0]["response_id"]
        )

        def commented(cases: list[dict[str, Any]]) -> bool:
            return any(c["comment"] == "Billing is a mess" for c in cases)

        cases = await eventually(
            lambda: cases_of(client, system, person), until=commented, what="the late comment"
        )
    assert [c["case_id"] for c in cases] == [case["case_id"]]
    assert len(emails_to(system, person)) == 1


async def test_badly_signed_webhook_is_refused_by_the_running_service(system: System) -> None:
    body = delighted("survey_response.created", person="p-x", response="r-x", comment=None)
    async with system.client() as client:
        answer = await client.post(
            f"{system.url('ingest')}/v1/webhooks/e2e-delighted",
            content=body,
            headers={"X-Delighted-Webhook-Signature": "sha256=" + "0" * 64},
        )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_detractor_whose_name_and_comment_hold_control_characters_is_not_lost(
    system: System,
) -> None:
    """What a respondent typed is made to fit, not refused (issue #12): the case opens, and
    the acknowledgement goes to that one address, its name on one line, with no header the
    name could have added."""
    person = f"p-{uuid.uuid4().hex[:8]}"
    payload = json.loads(
        delighted(
            "survey_response.created",
            person=person,
            response=f"r-{uuid.uuid4().hex[:8]}",
            comment="It broke\r\n\ttwice\u0000 \u001b[31mtoday\u001b[0m",
        )
    )
    payload["event_data"]["person"]["name"] = "Eve\r\nBcc: intruder@example.com"
    async with system.client() as client:
        answer = await post_signed(client, system, json.dumps(payload).encode())
        assert answer.status_code == 202, answer.text
        [case] = await eventually(
            lambda: cases_of(client, system, person),
            until=lambda cases: (
                bool(cases)
                and any(
                    a["channel"] == "email" and a["state"] == "sent" for a in cases[0]["actions"]
                )
            ),
            what="the case, its acknowledgement sent",
        )
    assert case["customer"]["name"] == "Eve Bcc: intruder@example.com"
    assert case["comment"] == "It broke\r\n\ttwice [31mtoday[0m"
    [mail] = emails_to(system, person)
    assert mail["Bcc"] is None
    assert [a.addr_spec for a in mail["To"].addresses] == [f"{person}@example.com"]
    recipients = {
        a.addr_spec
        for m in system.infra.mail.messages()
        for header in ("To", "Cc", "Bcc")
        if m[header] is not None
        for a in m[header].addresses
    }
    assert "intruder@example.com" not in recipients
