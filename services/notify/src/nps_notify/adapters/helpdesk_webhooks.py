"""The helpdesk's webhook back to npsloop.

Zendesk signs each request with `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(signing
secret, timestamp + body)) and `X-Zendesk-Webhook-Signature-Timestamp`
(https://developer.zendesk.com/documentation/webhooks/verifying/), and a ticket's status change
arrives as the `zen:event-type:ticket.status_changed` event
(https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/).

Jira Cloud signs the webhooks an admin registers with a secret as `X-Hub-Signature:
sha256=<hex HMAC-SHA256(secret, body)>` (WebSub), names each delivery in
`X-Atlassian-Webhook-Identifier` (the same on a retry), and reports a transition as a
`jira:issue_updated` event whose changelog has a `status` item
(https://developer.atlassian.com/cloud/jira/platform/webhooks/). The scheme has no timestamp:
a replayed delivery is the same event, which followup records once.

What a change carries on is checked here, after the signature: an id or a status is one line
of at most its event field's length, and a time is a real time. A signed body that is not the
helpdesk's shape is 400; one whose values npsloop cannot store or publish is 422 naming the
field (neither is retried by the helpdesk to any avail)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from nps_events.signing import any_equal
from nps_events.text import line_error
from nps_notify.domain.tickets import TicketChange


class WebhookRefused(Exception):  # noqa: N818 - an outcome, named for what it is
    """The request is not the helpdesk's (401), not what it sends (400), or carries a value
    npsloop cannot keep (422, with the `field`); says why."""

    def __init__(self, status: int, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.status = status
        self.field = field
        self.reason = reason


#: Errors of a body that is JSON of another shape, or too deep to decode.
_SHAPE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, RecursionError)


def _line(value: object, field: str, *, max_length: int) -> str:
    """`value` as one line of 1 to `max_length` characters, or `WebhookRefused(422)`."""
    text = str(value)
    problem = line_error(text)
    if problem is None and not text:
        problem = "must not be empty"
    if problem is None and len(text) > max_length:
        problem = f"is longer than {max_length} characters"
    if problem is not None:
        raise WebhookRefused(422, problem, field=field)
    return text


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _mac(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` with `secret`: how both helpdesks sign (and their fakes)."""
    return hmac.digest(secret.encode(), message, hashlib.sha256)


def verify_zendesk(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> None:
    """Raise `WebhookRefused(401)` unless one of `secrets` (several during a rotation) signed
    this body at a time within `tolerance` of `now`."""
    signature = headers.get("x-zendesk-webhook-signature")
    stamp = headers.get("x-zendesk-webhook-signature-timestamp")
    if not signature or not stamp:
        raise WebhookRefused(401, "missing X-Zendesk-Webhook-Signature or its timestamp")
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise WebhookRefused(401, "the signature timestamp is not ISO 8601") from None
    if at.tzinfo is None or abs(now - at) > tolerance:
        raise WebhookRefused(401, "the signature timestamp is too old or in the future")
    signed = stamp.encode() + body
    if not any_equal((base64.b64encode(_mac(s, signed)) for s in secrets), [signature]):
        raise WebhookRefused(401, "the signature does not match")


def sign_zendesk(body: bytes, *, secret: str, timestamp: str) -> dict[str, str]:
    """The headers Zendesk sends with `body` (for fakes and tests)."""
    mac = _mac(secret, timestamp.encode() + body)
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def parse_zendesk(body: bytes) -> TicketChange | None:
    """The status change the event reports; None for any other event type. Raise
    `WebhookRefused(400)` for a body that is not a Zendesk event."""
    try:
        event = json.loads(body)
        kind = event["type"]
        if kind != "zen:event-type:ticket.status_changed":
            return None
        detail, change = event["detail"], event["event"]
        current = change.get("current")
        status = current.get("status") if isinstance(current, dict) else current
        previous = change.get("previous")
        before = previous.get("status") if isinstance(previous, dict) else previous
        event_id, ticket_id = event["id"], detail["id"]
        status = status or detail["status"]
        at = _aware(datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")))
    except _SHAPE_ERRORS as exc:
        raise WebhookRefused(400, f"not a Zendesk event: {type(exc).__name__} {exc}") from None
    try:
        at.astimezone(UTC)
    except OverflowError:
        raise WebhookRefused(422, "must be within years 1–9999 in UTC", field="time") from None
    return TicketChange(
        event_id=_line(event_id, "id", max_length=200),
        ticket_id=_line(ticket_id, "detail.id", max_length=200),
        status=_line(status, "event.current", max_length=40).lower(),
        previous_status=_line(before, "event.previous", max_length=40).lower() if before else None,
        at=at,
    )


def verify_jira(headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str]) -> None:
    """Raise `WebhookRefused(401)` unless one of `secrets` (several during a rotation) signed
    this body."""
    signature = headers.get("x-hub-signature", "")
    method, _, digest = signature.partition("=")
    if method != "sha256" or not digest:
        raise WebhookRefused(401, "missing X-Hub-Signature: sha256=<hex>")
    if not any_equal((_mac(s, body).hex() for s in secrets), [digest.lower()]):
        raise WebhookRefused(401, "the signature does not match")


def sign_jira(body: bytes, *, secret: str) -> dict[str, str]:
    """The signature header Jira sends with `body` (for fakes and tests)."""
    return {"X-Hub-Signature": "sha256=" + _mac(secret, body).hex()}


def parse_jira(headers: Mapping[str, str], body: bytes) -> TicketChange | None:
    """The status transition the event reports; None for any other event or change. Raise
    `WebhookRefused(400)` for a body that is not a Jira event."""
    try:
        event = json.loads(body)
        if event["webhookEvent"] != "jira:issue_updated":
            return None
        items = (event.get("changelog") or {}).get("items") or []
        moves = [i for i in items if i.get("fieldId", i.get("field")) == "status"]
        if not moves:
            return None
        issue = event["issue"]
        delivery = headers.get("x-atlassian-webhook-identifier")
        stamp = event["timestamp"]
        move = moves[-1]
        ticket_id, status, before = issue["key"], move["toString"], move.get("fromString")
        event_id = delivery or f"{issue['id']}:{stamp}"
    except _SHAPE_ERRORS as exc:
        raise WebhookRefused(400, f"not a Jira event: {type(exc).__name__} {exc}") from None
    return TicketChange(
        event_id=_line(
            event_id,
            "X-Atlassian-Webhook-Identifier" if delivery else "issue.id",
            max_length=200,
        ),
        ticket_id=_line(ticket_id, "issue.key", max_length=200),
        status=_line(status, "changelog.items.toString", max_length=200).lower()[:40],
        previous_status=_line(before, "changelog.items.fromString", max_length=200).lower()[:40]
        if before
        else None,
        at=_jira_time(stamp),
    )


def _jira_time(stamp: object) -> datetime:
    """Jira's `timestamp`: milliseconds since the epoch, as a number."""
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | str):
        raise WebhookRefused(422, "must be milliseconds since the epoch", field="timestamp")
    try:
        return datetime.fromtimestamp(int(stamp) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookRefused(
            422, "must be milliseconds since the epoch, within years 1–9999", field="timestamp"
        ) from None
