"""Notify's use cases: dispatch action commands at most once each and report every outcome
(`dispatching`), build each channel's job from its command (`jobs`), and relay a helpdesk's
ticket changes (`tickets`); `ports` says what they need of storage."""

from nps_notify.handlers.dispatching import (
    INTERRUPTED,
    MAX_REASON,
    Channel,
    Dispatcher,
    report_unsupported,
    unsubscribed,
)
from nps_notify.handlers.jobs import (
    ROUTES,
    WEBHOOK_PREFIX,
    Route,
    Unbuildable,
    channel_of,
    email_job,
    resurvey_job,
    sms_job,
    staff_notice,
    ticket_job,
    undeliverable,
    webhook_job,
)
from nps_notify.handlers.ports import DispatchLedger, TicketLedger, Transactions
from nps_notify.handlers.tickets import record_ticket_change

__all__ = [
    "INTERRUPTED",
    "MAX_REASON",
    "ROUTES",
    "WEBHOOK_PREFIX",
    "Channel",
    "DispatchLedger",
    "Dispatcher",
    "Route",
    "TicketLedger",
    "Transactions",
    "Unbuildable",
    "channel_of",
    "email_job",
    "record_ticket_change",
    "report_unsupported",
    "resurvey_job",
    "sms_job",
    "staff_notice",
    "ticket_job",
    "undeliverable",
    "unsubscribed",
    "webhook_job",
]
