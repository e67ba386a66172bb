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
a replayed delivery is the same event, which followup records once."""

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class WebhookRefused(Exception):  # noqa: N818 - an outcome, named for what it is
    """The request is not the helpdesk's (401) or not what it sends (400); says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _mac(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` with `secret`: how both helpdesks sign (and their fakes)."""
    return hmac.digest(secret.encode(), message, hashlib.sha256)


@dataclass(frozen=True, slots=True)
class TicketChange:
    event_id: str
    ticket_id: str
    status: str
    previous_status: str | None
    at: datetime


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
    for secret in secrets:
        expected = base64.b64encode(_mac(secret, signed))
        if hmac.compare_digest(expected, signature.encode()):
            return
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
        return TicketChange(
            event_id=str(event["id"]),
            ticket_id=str(detail["id"]),
            status=str(status or detail["status"]).lower(),
            previous_status=str(before).lower() if before else None,
            at=datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookRefused(400, f"not a Zendesk event: {type(exc).__name__} {exc}") from None


def verify_jira(headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str]) -> None:
    """Raise `WebhookRefused(401)` unless one of `secrets` (several during a rotation) signed
    this body."""
    signature = headers.get("x-hub-signature", "")
    method, _, digest = signature.partition("=")
    if method != "sha256" or not digest:
        raise WebhookRefused(401, "missing X-Hub-Signature: sha256=<hex>")
    found = False
    for secret in secrets:
        expected = _mac(secret, body).hex()
        found |= hmac.compare_digest(expected, digest.lower())
    if not found:
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
        at = datetime.fromtimestamp(int(event["timestamp"]) / 1000, tz=UTC)
        move = moves[-1]
        return TicketChange(
            event_id=delivery or f"{issue['id']}:{event['timestamp']}",
            ticket_id=str(issue["key"]),
            status=str(move["toString"]).lower()[:40],
            previous_status=str(move["fromString"]).lower()[:40]
            if move.get("fromString")
            else None,
            at=at,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookRefused(400, f"not a Jira event: {type(exc).__name__} {exc}") from None
