"""One response followed by OpenTelemetry from the webhook to the dispatched actions: the
trace context the sender gave ingest travels in Kafka headers and outbox rows through
scoring, followup and notify, and each exports its spans to the (fake) collector."""

import secrets
import uuid

import httpx

from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import cases_of
from tests.e2e.test_webhooks import delighted, post_signed
from tests.support.fake_collector import FakeCollector
from tests.support.polling import eventually

SERVICES = {"npsloop-ingest", "npsloop-scoring", "npsloop-followup", "npsloop-notify"}


async def test_a_response_is_one_trace_from_the_webhook_to_notify(
    system: System, collector: FakeCollector
) -> None:
    trace_id = secrets.token_hex(16)
    person = f"tr-{uuid.uuid4().hex[:8]}"
    body = delighted("survey_response.created", person=person, response=person, comment=None)
    async with httpx.AsyncClient(timeout=10) as client:
        # The sender's own trace (W3C traceparent): npsloop continues it.
        client.headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        answer = await post_signed(client, system, body)
        assert answer.status_code == 202, answer.text
        del client.headers["traceparent"]
        await eventually(
            lambda: cases_of(client, system, f"{person}"),
            until=lambda cases: (
                bool(cases) and all(a["state"] == "sent" for a in cases[0]["actions"])
            ),
            what="the case with its actions dispatched",
        )

    def ours() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for span in collector.spans:
            if span.trace_id == trace_id or trace_id in span.links:
                found.setdefault(span.service, set()).add(span.name)
        return found

    async def probe() -> dict[str, set[str]]:
        return ours()

    spans = await eventually(
        probe,
        until=lambda found: set(found) >= SERVICES,
        timeout=30,
        what="spans of the trace from all four services",
    )
    assert "POST /v1/webhooks/{source}" in spans["npsloop-ingest"]
    assert "nps.responses.v1 process" in spans["npsloop-scoring"]
    assert "nps.scored.v1 process" in spans["npsloop-followup"]
    assert "nps.actions.v1 process" in spans["npsloop-notify"]
