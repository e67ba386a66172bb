"""OpenTelemetry tracing: a response followed from the webhook to the dispatched action, with
the W3C trace context (`traceparent`, `tracestate`) carried in Kafka headers and in outbox
rows.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and
`OTEL_SDK_DISABLED` is not true: then every span below is the API's no-op span, which costs
next to nothing on ingest's hot path. When on, spans go to the OTLP/HTTP endpoint in batches;
the standard `OTEL_*` variables (service name, sampler, headers…) apply.

A consumer handles records in batches: its span's parent is the batch's first record's
context, and every record's context is a link. At the usual pace of survey responses a batch
holds one record, and a response is one trace from ingest to notify; under load the other
records' traces are linked rather than continued.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind

Headers = list[tuple[str, bytes]]

TRACE_HEADERS = ("traceparent", "tracestate")
tracer = trace.get_tracer("npsloop")


def configure_tracing(service: str) -> bool:
    """Install the SDK's tracer provider with an OTLP/HTTP exporter when an endpoint is
    configured; return whether tracing is on."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    name = os.environ.get("OTEL_SERVICE_NAME") or f"npsloop-{service}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    global _on  # noqa: PLW0603 - set once, at start-up
    _on = True
    return True


def shutdown_tracing() -> None:
    """Flush the spans not exported yet (on a graceful stop)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def with_trace_context(headers: Headers) -> Headers:
    """`headers` plus the current trace context, unless they carry one already (an event the
    outbox stored keeps the context it was written in)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    if any(name in TRACE_HEADERS for name, _ in headers):
        return headers
    return [*headers, *trace_context_headers()]


def trace_context_headers() -> Headers:
    """The current trace context as headers; none outside a valid span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items() if k in TRACE_HEADERS]


def context_of(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context | None:
    carrier = {k: v.decode("latin-1") for k, v in headers if k in TRACE_HEADERS}
    return propagate.extract(carrier) if "traceparent" in carrier else None


@contextmanager
def consuming(
    topic: str, group: str, records: Sequence[Sequence[tuple[str, bytes]]]
) -> Iterator[Span]:
    """The span of one consumed batch: child of its first record's trace, linked to all."""
    contexts = [c for c in (context_of(h) for h in records) if c is not None]
    links = [Link(trace.get_current_span(c).get_span_context()) for c in contexts]
    with tracer.start_as_current_span(
        f"{topic} process",
        context=contexts[0] if contexts else None,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.batch.message_count": len(records),
        },
    ) as span:
        yield span


_on = False


def tracing_on() -> bool:
    """Whether `configure_tracing` installed a tracer provider."""
    return _on


_NO_SPAN = nullcontext(trace.INVALID_SPAN)


def serving(method: str, route: str, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
    """The server span of a request a hot route serves (FastAPI's own telemetry covers the
    rest), continuing the caller's trace if it sent one (`headers`: lower-cased names). With
    tracing off and no trace context to pass on, no span at all: the API's no-op span cost a
    quarter of a trivial hot route (measured in docs/performance.md)."""
    if not _on and "traceparent" not in headers:
        return _NO_SPAN
    return _serving(method, route, headers)


@contextmanager
def _serving(method: str, route: str, headers: Mapping[str, str]) -> Iterator[Span]:
    with tracer.start_as_current_span(
        f"{method} {route}",
        context=propagate.extract(headers) if "traceparent" in headers else None,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route},
    ) as span:
        yield span
