"""A survey tool's customer fields reach followup's rules: a Typeform hidden field `plan`,
posted to ingest's app, published on the real broker, scored in the real database, routes the
response to the policy's plan-specific rule."""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from nps_events import ResponseReceived, Topic
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import PolicyInForce, open_cases
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.domain.sources import FieldMapping, Provider, Source
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import Publisher
from nps_kit.settings import KafkaSettings
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.handlers import score_responses
from tests.integration.kafka_helpers import NOW, read_all
from tests.support.infra import Infra

SECRET = "typeform-webhook-secret"
TYPEFORM = Source(
    name="tf-attrs",
    provider=Provider.TYPEFORM,
    secrets=(SECRET,),
    mapping=FieldMapping(customer_id="user_id"),
)
#: The shipped policy, plus a rule for detractors on the enterprise plan: more specific than
#: `detractor`, so it wins for them.
_POLICY = parse_policy(
    default_policy_text().replace(
        "rules:\n",
        """rules:
  - name: detractor-enterprise
    when: {segment: detractor, attributes: {plan: enterprise}}
    case:
      team: customer-success
      owner: round_robin
      contact_within: 4 business hours
      remind_before: 1 business hour
      second_level_after: 2 business hours
    actions:
      - kind: ticket
        priority: urgent
""",
        1,
    )
)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))


def typeform_delivery(token: str, hidden: dict[str, str]) -> bytes:
    """Typeform's documented `form_response` payload, with the respondent's hidden fields."""
    return json.dumps(
        {
            "event_id": f"ev-{token}",
            "event_type": "form_response",
            "form_response": {
                "form_id": "lT4Z3j",
                "token": token,
                "submitted_at": "2026-11-24T09:58:00Z",
                "hidden": hidden,
                "definition": {"id": "lT4Z3j", "title": "NPS", "fields": []},
                "answers": [
                    {"type": "number", "number": 3, "field": {"id": "N1", "type": "nps"}},
                ],
            },
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "Typeform-Signature": "sha256=" + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


@pytest.fixture
async def ingest(infra: Infra) -> AsyncIterator[tuple[httpx.AsyncClient, KafkaSettings]]:
    kafka = KafkaSettings(bootstrap_servers=infra.bootstrap_servers)
    publisher = Publisher(kafka, client_id="test-attributes")
    await publisher.start()
    app = http_app(
        sources={TYPEFORM.name: TYPEFORM},
        adapters=ADAPTERS,
        fetchers={},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=10.0,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client, kafka
    await publisher.stop()


async def test_a_typeform_hidden_plan_routes_the_response_to_the_plans_rule(
    ingest: tuple[httpx.AsyncClient, KafkaSettings], sessions: SessionFactory
) -> None:
    client, kafka = ingest
    run = uuid.uuid4().hex[:8]
    event_ids = []
    for who, hidden in (
        ("big", {"user_id": f"big-{run}", "plan": "enterprise", "region": "EMEA"}),
        ("small", {"user_id": f"small-{run}", "plan": "starter"}),
    ):
        body = typeform_delivery(f"{who}-{run}", hidden)
        answer = await client.post(
            f"/v1/webhooks/{TYPEFORM.name}", content=body, headers=signed(body)
        )
        assert answer.status_code == 202, answer.text
        event_ids.append(answer.json()["accepted"][0]["event_id"])

    # What the broker holds is what followup's rules will see.
    # The test infrastructure makes every topic with 3 partitions; the key is the customer.
    records = {
        dict(r.headers)["ce_id"].decode(): r.value or b""
        for r in await read_all(kafka, Topic.RESPONSES.value, partitions=3)
    }
    received = [ResponseReceived.model_validate_json(records[i]) for i in event_ids]
    assert [r.customer.attributes for r in received] == [
        {"plan": "enterprise", "region": "EMEA"},
        {"plan": "starter"},
    ]

    async with unit_of_work(sessions) as session:
        scored = await score_responses(
            ScoringRepository(session),
            received,
            now=NOW,
            classifier=KeywordThemeClassifier(load_taxonomy()),
        )
    async with unit_of_work(sessions) as session:
        cases = await open_cases(FollowupRepository(session), scored, now=NOW, policy=POLICY)

    assert [(c.customer_id, c.rule) for c in cases] == [
        (f"big-{run}", "detractor-enterprise"),
        (f"small-{run}", "detractor"),
    ]
