"""Notify's HTTP API: the helpdesk's webhook back to npsloop."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.http import Problem
from nps_kit.outbox import OutboxRelay
from nps_notify.adapters.helpdesk_webhooks import (
    TicketChange,
    WebhookRefused,
    parse_jira,
    parse_zendesk,
    verify_jira,
    verify_zendesk,
)
from nps_notify.handlers import record_ticket_change


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
    jira_secrets = jira_secrets or []

    async def record(change: TicketChange | None, helpdesk: str, other: str) -> HelpdeskAnswer:
        if change is None:
            return HelpdeskAnswer(recorded=False, ignored=other)
        ignored = await record_ticket_change(
            change, helpdesk=helpdesk, sessions=sessions, clock=clock
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
        responses={
            400: {"description": "Not a Zendesk event (problem+json)."},
            401: {"description": "Missing or wrong signature, or a stale timestamp."},
            404: {"description": "No Zendesk webhook secret is configured."},
        },
    )
    async def zendesk(request: Request) -> HelpdeskAnswer:
        """Point a Zendesk webhook (ticket events, `ticket.status_changed`) here, signed with
        a secret of `ZENDESK_WEBHOOK_SECRETS`. A change of a ticket npsloop opened lands on
        its case's timeline (an agent solved it: the owner sees the helpdesk side is done);
        other tickets and other events are acknowledged and ignored, so that Zendesk does
        not retry them."""
        if not zendesk_secrets:
            raise Problem(404, "Not configured", "No Zendesk webhook secret is configured.")
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify_zendesk(headers, body, secrets=zendesk_secrets, now=clock.now())
            change = parse_zendesk(body)
        except WebhookRefused as exc:
            raise _refused(exc) from exc
        return await record(change, "zendesk", "not a ticket status change")

    @api.post(
        "/v1/helpdesk/jira",
        status_code=202,
        response_model=HelpdeskAnswer,
        response_model_exclude_none=True,
        summary="Jira tells npsloop that an issue changed status",
        responses={
            400: {"description": "Not a Jira event (problem+json)."},
            401: {"description": "Missing or wrong signature."},
            404: {"description": "No Jira webhook secret is configured."},
        },
    )
    async def jira(request: Request) -> HelpdeskAnswer:
        """Point a Jira admin webhook (System → WebHooks, event "Issue updated", with a
        secret of `JIRA_WEBHOOK_SECRETS`) here. A transition of an issue npsloop opened lands
        on its case's timeline with the status's name (`done`, say); other issues, events
        and field changes are acknowledged and ignored, so that Jira does not retry them."""
        if not jira_secrets:
            raise Problem(404, "Not configured", "No Jira webhook secret is configured.")
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify_jira(headers, body, secrets=jira_secrets)
            change = parse_jira(headers, body)
        except WebhookRefused as exc:
            raise _refused(exc) from exc
        return await record(change, "jira", "not an issue status change")

    return api


def _refused(exc: WebhookRefused) -> Problem:
    title = "Invalid signature" if exc.status == 401 else "Malformed event"
    return Problem(exc.status, title, str(exc))
