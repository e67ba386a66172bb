"""Notify's composition root, used by production and by tests."""

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from nps_events import Topic
from nps_kit.clock import Clock, SystemClock
from nps_kit.db import in_one_transaction
from nps_kit.http import create_app
from nps_kit.infrastructure import Infrastructure
from nps_kit.service import BackgroundLoops
from nps_notify.adapters import tables
from nps_notify.adapters.email import SmtpEmailChannel
from nps_notify.adapters.jira import JiraTicketChannel
from nps_notify.adapters.repository import NotifyRepository, ledger_in
from nps_notify.adapters.sms import TwilioSmsChannel
from nps_notify.adapters.templates import TemplateRenderer
from nps_notify.adapters.tickets import ZendeskTicketChannel
from nps_notify.adapters.webhooks import WebhookChannel
from nps_notify.config import NotifySettings
from nps_notify.entrypoints.api import helpdesk_router
from nps_notify.entrypoints.consumer import actions_handler
from nps_notify.entrypoints.sweeper import parked_sweeper
from nps_notify.handlers import Channel, Dispatcher


@dataclass
class Notify:
    app: FastAPI
    infra: Infrastructure

    @property
    def runtime(self) -> BackgroundLoops:
        return self.infra.runtime


def templates(settings: NotifySettings) -> TemplateRenderer:
    """The templates in force (`NOTIFY_TEMPLATES_DIR` over the shipped ones), every one
    checked: raises `TemplatesInvalid` naming the file and line of each problem."""
    renderer = TemplateRenderer(settings.templates_dir)
    renderer.verify()
    return renderer


def build(settings: NotifySettings, *, clock: Clock | None = None) -> Notify:
    clock = clock or SystemClock()
    renderer = templates(settings)  # before connecting to anything
    sender, teams = settings.identity(), settings.identities()
    infra = Infrastructure.connect("notify", kafka=settings.kafka, database=settings.database)
    relay = infra.with_outbox(tables.outbox)
    channel = SmtpEmailChannel(
        settings.smtp,
        renderer=renderer,
        attempts=settings.send_attempts,
        clock=clock,
        sender=sender,
        teams=teams,
        staff_timezone=settings.staff_timezone,
    )
    infra.on_stop(channel.aclose)
    #: Each channel notify has, by name (STYLE.md: a dict, no plugin machinery). A channel
    #: that is not configured is absent: its actions are reported failed with the reason.
    channels: dict[str, Channel[Any]] = {"email": channel}
    if settings.twilio.configured:
        sms = TwilioSmsChannel(
            settings.twilio,
            renderer=renderer,
            attempts=settings.send_attempts,
            clock=clock,
            sender=sender,
            teams=teams,
        )
        infra.on_stop(sms.aclose)
        channels["sms"] = sms
    tickets: ZendeskTicketChannel | JiraTicketChannel | None = None
    if settings.zendesk.configured:
        tickets = ZendeskTicketChannel(settings.zendesk, attempts=settings.send_attempts)
    elif settings.jira.configured:
        tickets = JiraTicketChannel(settings.jira, attempts=settings.send_attempts)
    if tickets is not None:
        infra.on_stop(tickets.aclose)
        channels["ticket"] = tickets
    if settings.webhooks:
        hooks = WebhookChannel(settings.webhooks, attempts=settings.send_attempts)
        infra.on_stop(hooks.aclose)
        channels["webhook"] = hooks
    dispatcher = Dispatcher(
        ledger=ledger_in(infra.sessions),
        channels=channels,
        clock=clock,
        concurrency=settings.send_concurrency,
        case_url=settings.case_link,
        retry_delay=settings.retry_delay_seconds,
        max_attempts=settings.max_attempts,
        webhook_endpoints=frozenset(settings.webhooks),
    )
    infra.add_consumer(
        group_id=settings.consumer_group,
        topics=[Topic.ACTIONS.value],
        handler=actions_handler(dispatcher=dispatcher, relay=relay),
    )

    parked = parked_sweeper(
        dispatcher=dispatcher,
        relay=relay,
        interval=settings.parked_interval_seconds,
        batch_size=settings.parked_batch_size,
    )
    infra.add_loop("parked", parked.run, stop=parked.stop)
    app = create_app(
        title="npsloop notify",
        description=(
            "Dispatches follow-up actions (email, SMS, helpdesk tickets) and reports their "
            "outcomes; receives the helpdesk's ticket changes."
        ),
        version="0.1.0",
        readiness=infra.readiness(),
        lifespan=infra.lifespan(),
        docs=settings.http.docs_enabled,
    )
    app.include_router(
        helpdesk_router(
            sessions=infra.sessions,
            relay=relay,
            clock=clock,
            zendesk_secrets=[s.get_secret_value() for s in settings.zendesk.webhook_secrets],
            jira_secrets=[s.get_secret_value() for s in settings.jira.webhook_secrets],
        ),
        tags=["helpdesk webhooks"],
    )
    return Notify(app=app, infra=infra)


async def erase_customer(settings: NotifySettings, customer_id: str) -> dict[str, int]:
    """Delete what notify keeps about one customer, in one transaction (GDPR erasure)."""
    return await in_one_transaction(
        settings.database,
        lambda session: NotifyRepository(session).erase_customer(customer_id),
        application_name="npsloop-notify-erase",
    )
