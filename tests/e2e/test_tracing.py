"""One response followed by OpenTelemetry from the webhook to the dispatched actions: the
trace context the sender gave ingest travels in Kafka headers and outbox rows through
scoring, followup and notify, and each exports its spans to the (fake) collector."""

import secrets
import uuid

from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import cases_of
from tests.e2e.test_webhooks import delighted, post_signed
from tests.support.fake_collector import FakeCollector
from tests.support.polling import eventually

#: A span each service must export for the response (each may export others too).
EXPECTED = {
    "npsloop-ingest": "POST /v1/webhooks/{source}",
    "npsloop-scoring": "nps.responses.v1 process",
    "npsloop-followup": "nps.scored.v1 process",
    "npsloop-notify": "nps.actions.v1 process",
}


async def test_a_response_is_one_trace_from_the_webhook_to_notify(
    system: System, collector: FakeCollector
) -> None:
    trace_id = secrets.token_hex(16)
    person = f"tr-{uuid.uuid4().hex[:8]}"
    body = delighted("survey_response.created", person=person, response=person, comment=None)
    async with system.client() as client:
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

    # Wait for the spans named, not for any span of each service: followup also consumes
    # nps.responses.v1 (for opt-outs), and that span may be exported in an earlier batch than
    # its nps.scored.v1 one (seen on Apache Kafka, where no consumer waits to join its group).
    await eventually(
        probe,
        until=lambda found: all(name in found.get(svc, set()) for svc, name in EXPECTED.items()),
        timeout=30,
        what="the spans of the trace from all four services",
    )
