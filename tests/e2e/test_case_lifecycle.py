"""A detractor's case worked from open to closed, and a case nobody works climbing the
escalation ladder, as a customer-success team and a downstream consumer of nps.cases.v1
see them: through the followup API and the topic only."""

import json
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx

from nps_events import ContactOptOut, Customer, OptOutScope, SendSms, Topic, dlq, encode
from nps_kit.messaging import Outgoing, Publisher
from nps_kit.settings import KafkaSettings
from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import a_response, cases_of, post
from tests.integration.kafka_helpers import read_all
from tests.support.fake_twilio import FakeTwilio
from tests.support.polling import eventually


async def case_events(system: System, case_id: str) -> list[str]:
    """The lifecycle events of one case on nps.cases.v1, as a downstream consumer reads them."""
    return [kind for kind, _ in await case_events_with_actors(system, case_id)]


async def case_events_with_actors(
    system: System, case_id: str
) -> list[tuple[str, dict[str, Any] | None]]:
    """Each lifecycle event of one case on nps.cases.v1 with its `actor`, in order."""
    records = await read_all(
        KafkaSettings(bootstrap_servers=system.infra.bootstrap_servers),
        Topic.CASES.value,
        partitions=3,
    )
    found = []
    for record in sorted(records, key=lambda r: (r.timestamp, r.offset)):
        headers = {k: v.decode() for k, v in record.headers}
        if headers.get("ce_subject") == f"cases/{case_id}":
            kind = headers["ce_type"].removeprefix("io.npsloop.case.").removesuffix(".v1")
            found.append((kind, json.loads(record.value).get("actor")))
    return found


def channels(case: dict[str, Any]) -> dict[str, str]:
    return {f"{a['channel']}/{a['template']}": a["state"] for a in case["actions"]}


async def notices_to(system: System, recipient: str, case_id: str) -> list[EmailMessage]:
    """The staff notices about `case_id` that reached `recipient`."""
    return [
        m
        for m in system.infra.mail.messages()
        if m["To"] == recipient and case_id in m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    ]


async def test_a_detractor_is_acknowledged_ticketed_contacted_resolved_and_closed(
    system: System,
) -> None:
    customer = f"life-{uuid.uuid4().hex[:8]}"
    followup = system.url("followup")
    lead = system.infra.bearer("cs-lead@example.com")
    async with httpx.AsyncClient(timeout=10, headers=lead) as client:
        assert (await post(client, system, a_response(customer))).status_code == 202
        [case] = await eventually(
            lambda: cases_of(client, system, customer),
            until=lambda cases: (
                bool(cases)
                and channels(cases[0])
                == {
                    "email/detractor_acknowledgement": "sent",
                    "ticket/None": "sent",
                    "staff/case_assigned": "sent",
                }
            ),
            what="the acknowledgement, the owner's notice and the helpdesk ticket sent",
        )
        assert case["status"] == "open"
        assert case["owner"] in ("alex@example.com", "sam@example.com")
        case_url = f"{followup}/v1/cases/{case['case_id']}"
        # The lead gives the case to the other agent of the team, who works it.
        kim = next(p for p in ("alex@example.com", "sam@example.com") if p != case["owner"])
        agent = system.infra.bearer(kim)

        async def do(path: str, body: dict[str, Any], who: dict[str, str]) -> dict[str, Any]:
            answer = await client.post(f"{case_url}/{path}", json=body, headers=who)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        await do("assign", {"owner": kim}, lead)
        # Kim learns of it by email, with the case's link; the rule's first owner did too.
        for owner in (case["owner"], kim):
            notice = await eventually(
                lambda owner=owner: notices_to(system, owner, case["case_id"]),
                until=bool,
                what=f"the assignment notice to {owner}",
            )
            [subject] = [str(m["Subject"]) for m in notice]
            assert subject.startswith("A new NPS detractor case is yours")
        contacted = await do(
            "contacts", {"channel": "phone", "outcome": "reached", "note": "fixed"}, agent
        )
        assert contacted["status"] == "contacted"
        premature = await client.post(f"{case_url}/close", json={}, headers=lead)
        assert premature.status_code == 409
        assert premature.headers["content-type"] == "application/problem+json"
        unknown = await client.post(
            f"{case_url}/resolve", json={"root_cause": "gremlins"}, headers=agent
        )
        assert unknown.status_code == 422
        await do("resolve", {"root_cause": "support_experience"}, agent)
        closed = await do("close", {}, lead)
        assert closed["status"] == "closed"
        # Who did each step: the system (by the rule), the lead, the agent, the lead.
        assert [e["actor"] for e in closed["timeline"]] == [
            "system",
            "system",
            "cs-lead@example.com",
            kim,
            kim,
            "cs-lead@example.com",
        ]
        assert {e["by"]["kind"] for e in closed["timeline"][2:]} == {"person"}
        assert closed["timeline"][0]["by"]["rule"] == "detractor"
        assert [e["kind"] for e in closed["timeline"]] == [
            "opened",
            "assigned",
            "assigned",
            "contact",
            "resolved",
            "closed",
        ]
        assert closed["timeline"][3]["details"]["within_sla"] is True
        by_owner = (await client.get(f"{followup}/v1/figures", params={"group_by": "owner"})).json()
        [kims] = [g for g in by_owner["groups"] if g["group"] == kim]
        assert kims["closed"] >= 1
        naive = await client.get(f"{followup}/v1/figures", params={"start": "2026-11-01T00:00"})
        assert naive.status_code == 422

    events = await eventually(
        lambda: case_events_with_actors(system, case["case_id"]),
        until=lambda events: (
            [kind for kind, _ in events]
            == ["opened", "assigned", "assigned", "contact-recorded", "resolved", "closed"]
        ),
        what="the case's lifecycle on nps.cases.v1",
    )
    # …and a downstream consumer of the topic sees who did each step too.
    assert [(a or {}).get("name") for _, a in events] == [
        "system",
        "system",
        "cs-lead@example.com",
        kim,
        kim,
        "cs-lead@example.com",
    ]


async def test_a_case_nobody_works_is_reminded_then_escalated_twice(system: System) -> None:
    customer = f"breach-{uuid.uuid4().hex[:8]}"
    response = {**a_response(customer), "survey_id": "e2e-breach"}
    async with system.client() as client:
        assert (await post(client, system, response)).status_code == 202
        [listed] = await eventually(
            lambda: cases_of(client, system, customer), until=bool, what="the case"
        )
        assert listed["rule"] == "detractor-breach-drill"

        async def one() -> dict[str, Any]:
            answer = await client.get(f"{system.url('followup')}/v1/cases/{listed['case_id']}")
            result: dict[str, Any] = answer.json()
            return result

        case = await eventually(
            one,
            until=lambda c: (
                c["escalation_level"] == 2
                and all(a["state"] == "sent" for a in c["actions"] if a["channel"] == "staff")
            ),
            timeout=60,
            what="the reminder, then both escalation levels, each emailed by notify",
        )
    ladder = [
        e for e in case["timeline"] if e["kind"] in ("reminded", "escalated_1", "escalated_2")
    ]
    assert [(e["kind"], e["details"]["recipient"]) for e in ladder] == [
        ("reminded", case["owner"]),
        ("escalated_1", "cs-lead@example.com"),
        ("escalated_2", "head-of-cx@example.com"),
    ]
    staff = [a for a in case["actions"] if a["channel"] == "staff"][1:]  # after the assignment
    assert [a["template"] for a in staff] == ["case_reminder", "case_escalation", "case_escalation"]
    # Each rung of the ladder reached its person by email, with the case's link.
    notices = {
        str(m["Message-ID"]): m
        for m in system.infra.mail.messages()
        if str(m["Subject"]).startswith(("Reminder", "Escalation"))
    }
    for action, (recipient, subject) in zip(
        staff,
        [
            (case["owner"], "Reminder: "),
            ("cs-lead@example.com", "Escalation (level 1)"),
            ("head-of-cx@example.com", "Escalation (level 2)"),
        ],
        strict=True,
    ):
        mail = notices[action["provider_message_id"]]
        assert recipient in str(mail["To"])
        assert str(mail["Subject"]).startswith(subject)
        assert case["case_id"] in mail.get_body(("plain",)).get_content()
    await eventually(
        lambda: case_events(system, case["case_id"]),
        until=lambda events: events == ["opened", "assigned", "reminded", "escalated", "escalated"],
        what="the breach on nps.cases.v1",
    )


async def test_an_opt_out_on_the_responses_topic_reaches_the_do_not_contact_list(
    system: System,
) -> None:
    customer = f"optout-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=system.infra.bootstrap_servers)
    publisher = Publisher(kafka, client_id="e2e-survey-tool")
    await publisher.start()
    try:
        await publisher.publish(
            ContactOptOut(
                source="e2e",
                customer_id=customer,
                scope=OptOutScope.EMAIL,
                provider_event_id=f"unsub-{customer}",
                occurred_at=datetime.now(UTC),
            ),
            source="/ingest/sources/e2e",
            now=datetime.now(UTC),
        )
    finally:
        await publisher.stop()
    async with system.client() as client:
        listed = await eventually(
            lambda: client.get(f"{system.url('followup')}/v1/do-not-contact/{customer}"),
            until=lambda answer: bool(answer.json()["entries"]),
            what="the customer on the do-not-contact list",
        )
    [entry] = listed.json()["entries"]
    assert (entry["scope"], entry["source"]) == ("email", "e2e")
    # Followup reads the opt-outs on nps.responses.v1 and skips the responses there: it
    # dead-letters none of them.
    dead = await read_all(kafka, dlq(Topic.RESPONSES.value), partitions=3)
    assert not [r for r in dead if dict(r.headers).get("dlq_group") == b"npsloop-followup"]


async def test_a_customer_who_texted_stop_reaches_the_do_not_contact_list_for_sms(
    system: System, twilio: tuple[FakeTwilio, str]
) -> None:
    """An SMS action to a number that texted STOP: Twilio refuses it (21610), notify publishes
    the opt-out, and followup's do-not-contact list shows it for SMS with Twilio's words."""
    customer = f"stop-{uuid.uuid4().hex[:8]}"
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    twilio[0].unsubscribed.add(phone)
    action = SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=customer, phone=phone, name="Ada"),
        template="detractor_apology",
        requested_at=datetime.now(UTC),
    )
    message = encode(action, source="/followup", time=datetime.now(UTC))
    publisher = Publisher(
        KafkaSettings(bootstrap_servers=system.infra.bootstrap_servers), client_id="e2e-stop"
    )
    await publisher.start()
    try:
        await publisher.send_many(
            [Outgoing(Topic.ACTIONS.value, message.key, message.value, message.headers)]
        )
    finally:
        await publisher.stop()
    async with system.client() as client:
        listed = await eventually(
            lambda: client.get(f"{system.url('followup')}/v1/do-not-contact/{customer}"),
            until=lambda answer: bool(answer.json()["entries"]),
            what="the customer on the do-not-contact list for SMS",
        )
    [entry] = listed.json()["entries"]
    assert (entry["scope"], entry["source"]) == ("sms", "notify")
    assert "error 21610" in entry["reason"]
    assert [m for m in twilio[0].messages if m["To"] == phone] == []
