"""Notify's HTTP API: the helpdesk's webhook back to npsloop."""

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.http import Problem
from nps_kit.outbox import OutboxRelay
from nps_notify.adapters.helpdesk_webhooks import (
    WebhookRefused,
    parse_jira,
    parse_zendesk,
    verify_jira,
    verify_zendesk,
)
from nps_notify.adapters.repository import ledger_in
from nps_notify.domain.tickets import TicketChange
from nps_notify.handlers import record_ticket_change


def _body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """The request body a helpdesk sends, for the OpenAPI document (the route reads the raw
    bytes, since the signature covers them)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


def _one_of(value: str) -> dict[str, Any]:
    """A string field: `value` is the one npsloop reads; others are acknowledged, ignored."""
    return {"anyOf": [{"const": value}, {"type": "string"}]}


ZENDESK_BODY = _body(
    {
        "type": "object",
        "required": ["type", "id", "time", "detail", "event"],
        "properties": {
            "type": _one_of("zen:event-type:ticket.status_changed"),
            "id": {"type": "string", "description": "The event's id."},
            "time": {"type": "string", "format": "date-time"},
            "detail": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
            },
            "event": {
                "type": "object",
                "properties": {
                    "current": {"type": "string"},
                    "previous": {"type": "string"},
                },
            },
        },
    },
    {
        "type": "zen:event-type:ticket.status_changed",
        "id": "cbe4028c-7239-495d-b020-f22348516046",
        "time": "2026-11-24T10:00:00Z",
        "detail": {"id": "35436", "status": "SOLVED"},
        "event": {"current": "SOLVED", "previous": "OPEN"},
    },
)
JIRA_BODY = _body(
    {
        "type": "object",
        "required": ["webhookEvent", "timestamp", "issue"],
        "properties": {
            "webhookEvent": _one_of("jira:issue_updated"),
            "timestamp": {"type": "integer", "description": "Milliseconds since the epoch."},
            "issue": {
                "type": "object",
                "required": ["id", "key"],
                "properties": {"id": {"type": "string"}, "key": {"type": "string"}},
            },
            "changelog": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": _one_of("status"),
                                "fieldId": _one_of("status"),
                                "fromString": {"type": "string"},
                                "toString": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    },
    {
        "webhookEvent": "jira:issue_updated",
        "timestamp": 1795514400000,
        "issue": {"id": "10002", "key": "CS-4"},
        "changelog": {
            "items": [
                {"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"}
            ]
        },
    },
)


class HelpdeskAnswer(BaseModel):
    recorded: bool = Field(description="The change was put on its case.")
    ignored: str | None = Field(default=None, description="Why not, when it was not.")


def helpdesk_router(
    *,
    sessions: SessionFactory,
    relay: OutboxRelay,
    clock: Clock,
    zendesk_secrets: list[str],
    jira_secrets: list[str] | None = None,
) -> APIRouter:
    api = APIRouter()
    ledger = ledger_in(sessions)
    jira_secrets = jira_secrets or []

    async def receive(
        request: Request,
        helpdesk: str,
        secrets: list[str],
        read: Callable[[Mapping[str, str], bytes], TicketChange | None],
    ) -> HelpdeskAnswer:
        """Verify and read the helpdesk's delivery; put a status change of a ticket npsloop
        opened on its case; acknowledge anything else (so that the helpdesk does not retry)."""
        if not secrets:
            raise Problem(404, "Not configured", f"No {helpdesk} webhook secret is configured.")
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            change = read(headers, body)
        except WebhookRefused as exc:
            if exc.field is not None:
                raise Problem(
                    exc.status,
                    "Invalid event",
                    str(exc),
                    errors=[{"field": exc.field, "message": exc.reason}],
                ) from exc
            title = "Invalid signature" if exc.status == 401 else "Malformed event"
            raise Problem(exc.status, title, str(exc)) from exc
        if change is None:
            return HelpdeskAnswer(recorded=False, ignored="not a status change")
        ignored = await record_ticket_change(
            change, helpdesk=helpdesk.lower(), ledger=ledger, clock=clock
        )
        if ignored is None:
            relay.wake()
        return HelpdeskAnswer(recorded=ignored is None, ignored=ignored)

    @api.post(
        "/v1/helpdesk/zendesk",
        status_code=202,
        response_model=HelpdeskAnswer,
        response_model_exclude_none=True,
        summary="Zendesk tells npsloop that a ticket changed status",
        openapi_extra=ZENDESK_BODY,
        responses={
            400: {"description": "Not a Zendesk event (problem+json)."},
            401: {"description": "Missing or wrong signature, or a stale timestamp."},
            404: {"description": "No Zendesk webhook secret is configured."},
            422: {
                "description": "A value npsloop cannot keep: an id or status with a control "
                "character, or too long; `errors` names the field (problem+json)."
            },
        },
    )
    async def zendesk(request: Request) -> HelpdeskAnswer:
        """Point a Zendesk webhook (ticket events, `ticket.status_changed`) here, signed with
        a secret of `ZENDESK_WEBHOOK_SECRETS`. A change of a ticket npsloop opened lands on
        its case's timeline (an agent solved it: the owner sees the helpdesk side is done);
        other tickets and other events are acknowledged and ignored, so that Zendesk does
        not retry them."""

        def read(headers: Mapping[str, str], body: bytes) -> TicketChange | None:
            verify_zendesk(headers, body, secrets=zendesk_secrets, now=clock.now())
            return parse_zendesk(body)

        return await receive(request, "Zendesk", zendesk_secrets, read)

    @api.post(
        "/v1/helpdesk/jira",
        status_code=202,
        response_model=HelpdeskAnswer,
        response_model_exclude_none=True,
        summary="Jira tells npsloop that an issue changed status",
        openapi_extra=JIRA_BODY,
        responses={
            400: {"description": "Not a Jira event (problem+json)."},
            401: {"description": "Missing or wrong signature."},
            404: {"description": "No Jira webhook secret is configured."},
            422: {
                "description": "A value npsloop cannot keep: an id or status with a control "
                "character, a `timestamp` that is no time; `errors` names the field."
            },
        },
    )
    async def jira(request: Request) -> HelpdeskAnswer:
        """Point a Jira admin webhook (System → WebHooks, event "Issue updated", with a
        secret of `JIRA_WEBHOOK_SECRETS`) here. A transition of an issue npsloop opened lands
        on its case's timeline with the status's name (`done`, say); other issues, events
        and field changes are acknowledged and ignored, so that Jira does not retry them."""

        def read(headers: Mapping[str, str], body: bytes) -> TicketChange | None:
            verify_jira(headers, body, secrets=jira_secrets)
            return parse_jira(headers, body)

        return await receive(request, "Jira", jira_secrets, read)

    return api
