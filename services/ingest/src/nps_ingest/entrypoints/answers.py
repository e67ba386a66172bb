"""How ingest answers: what it accepted (counted), and the problems it refuses with."""

from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from nps_events import ContactOptOut
from nps_ingest.domain.webhooks import InvalidResponseError
from nps_ingest.entrypoints.bodies import Accepted, WebhookItem
from nps_ingest.handlers import Received
from nps_kit.http import Problem, field_message
from nps_kit.logging import get_logger

log = get_logger(__name__)

ATTRIBUTES_SET_ASIDE = Counter(
    "npsloop_ingest_attributes_set_aside_total",
    "Customer fields from a survey tool that could not become attributes, by source.",
    ["source"],
)
COMMENTS_TRUNCATED = Counter(
    "npsloop_ingest_comments_truncated_total",
    "Comments cut to the configured limit, by source.",
    ["source"],
)


def _accepted_fields(received: Received) -> dict[str, Any]:
    """What an answer says of one published event (counting a truncated comment)."""
    event = received.event
    if isinstance(event, ContactOptOut):
        return {"event_id": str(event.event_id()), "type": "opt_out"}
    if received.comment_truncated:
        COMMENTS_TRUNCATED.labels(source=event.source).inc()
    return {
        "event_id": str(event.event_id()),
        "response_id": str(event.response_id),
        "comment_truncated": received.comment_truncated,
    }


def accepted_of(received: Received) -> Accepted:
    return Accepted(**_accepted_fields(received))


def webhook_item_of(received: Received) -> WebhookItem:
    """The same as `accepted_of`, with the fields set aside; one model built, not two."""
    fields = _accepted_fields(received)
    if received.attributes_set_aside:
        ATTRIBUTES_SET_ASIDE.labels(source=received.event.source).inc(
            len(received.attributes_set_aside)
        )
        # Field names and reasons only: the values are the customer's data.
        log.info(
            "webhook.attributes_set_aside",
            source=received.event.source,
            fields=list(received.attributes_set_aside),
        )
        fields["attributes_set_aside"] = list(received.attributes_set_aside)
    return WebhookItem(**fields)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="npsloop-ingest"'}
    )


def unavailable(what: str, exc: Exception, retry_after: int) -> Problem:
    return Problem(
        503,
        f"{what} unavailable",
        f"Nothing was lost and nothing is kept: {exc}. Retry later.",
        headers={"Retry-After": str(retry_after)},
    )


def invalid_response(exc: InvalidResponseError) -> Problem:
    return Problem(
        422,
        "Invalid response",
        str(exc),
        errors=[{"field": exc.field, "message": exc.message}],
    )


def item_error(exc: ValidationError | InvalidResponseError) -> str:
    if isinstance(exc, InvalidResponseError):
        return str(exc)
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {field_message(err)}"
        for err in exc.errors()
    )
