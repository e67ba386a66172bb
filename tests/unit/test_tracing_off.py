"""With tracing off (no OTLP endpoint), a hot route opens no span, yet a sender's trace
context still travels on with the events it publishes."""

from nps_kit.tracing import serving, tracing_on, with_trace_context

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_tracing_is_off_unless_configured() -> None:
    assert not tracing_on()


def test_a_senders_trace_context_is_passed_on_to_the_kafka_headers() -> None:
    with serving("POST", "/v1/webhooks/{source}", {"traceparent": TRACEPARENT}):
        headers = with_trace_context([("ce_id", b"1")])
    assert headers == [("ce_id", b"1"), ("traceparent", TRACEPARENT.encode())]


def test_without_one_no_span_and_no_trace_headers() -> None:
    with serving("POST", "/v1/webhooks/{source}", {"host": "ingest"}) as span:
        assert not span.get_span_context().is_valid
        headers = with_trace_context([("ce_id", b"1")])
    assert headers == [("ce_id", b"1")]
