"""The job each action command asks of its channel, and what its result reports."""

import uuid
from dataclasses import dataclass

from nps_events import Channel as ReportedChannel
from nps_events import (
    CreateTicket,
    Event,
    NotifyStaff,
    OptOutScope,
    RaiseTicketPriority,
    RequestResurvey,
    SendEmail,
    SendSms,
)
from nps_notify.domain.dispatch import (
    EmailJob,
    SmsJob,
    TicketJob,
    WebhookJob,
)


@dataclass(frozen=True, slots=True)
class Unbuildable:
    """An action whose job could not even be built (a bug, or a value no channel can use): it
    is recorded in the ledger like any other and fails with `reason`, without a provider."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    channel: str
    template: str
    reason: str


def email_job(action: SendEmail | NotifyStaff, *, case_url: str) -> EmailJob:
    """The email an action asks for: to the customer, in their language and time zone, or to a
    person of the team, with what they need to act (docs/templates.md lists the variables)."""
    if isinstance(action, SendEmail):
        return EmailJob(
            action_id=action.action_id,
            case_id=action.case_id,
            customer_id=action.customer.id,
            channel=ReportedChannel.EMAIL.value,
            template=action.template,
            to_address=action.customer.email,
            to_name=action.customer.name,
            context={
                "name": action.customer.name,
                "score": action.score,
                "comment": action.comment,
                "content_title": action.content.title if action.content else None,
                "content_url": action.content.url if action.content else None,
                "content_summary": action.content.summary if action.content else None,
                "referral_url": action.referral.url if action.referral else None,
                "referral_code": action.referral.code if action.referral else None,
            },
            locale=action.customer.locale or action.locale,
            timezone=action.customer.timezone,
            team=action.team,
            owner=action.owner,
        )
    return EmailJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=action.customer_id,
        channel=ReportedChannel.STAFF.value,
        template="staff_notice",
        # One email address: the command's model refuses anything else (a webhook recipient
        # goes to the webhook channel instead).
        to_address=action.recipient,
        context={
            "reason": action.reason.value,
            "role": action.role,
            "level": action.level,
            "due_at": action.due_at,
            "segment": action.segment.value,
            "score": action.score,
            "customer_name": action.customer_name,
            "comment": action.comment,
            "case_url": case_url.format(case_id=action.case_id),
        },
        timezone=action.timezone,
        team=action.team,
    )


def staff_notice(action: NotifyStaff, *, case_url: str) -> dict[str, object]:
    """What a team's tool is told by webhook: why, the case's deadline, segment and score, and
    its link. No customer PII (the tool is not a person who calls the customer back)."""
    return {
        "reason": action.reason.value,
        "role": action.role,
        "level": action.level,
        "due_at": action.due_at.isoformat() if action.due_at else None,
        "segment": action.segment.value,
        "score": action.score,
        "case_url": case_url.format(case_id=action.case_id),
    }


def sms_job(action: SendSms) -> SmsJob:
    return SmsJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=action.customer.id,
        to=action.customer.phone,
        template=action.template,
        context={"name": action.customer.name},
        quiet_hours=(
            (action.quiet_hours.timezone, action.quiet_hours.start, action.quiet_hours.end)
            if action.quiet_hours
            else None
        ),
        locale=action.customer.locale or action.locale,
        team=action.team,
    )


def ticket_job(action: CreateTicket | RaiseTicketPriority, *, case_url: str) -> TicketJob:
    if isinstance(action, RaiseTicketPriority):
        return TicketJob(
            action_id=action.action_id,
            case_id=action.case_id,
            customer_id=action.customer_id,
            priority=action.priority.value,
            raise_of=action.ticket_action_id,
        )
    link = case_url.format(case_id=action.case_id)
    said = f"\n\nWhat they wrote:\n{action.comment}" if action.comment else ""
    return TicketJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=action.customer.id,
        priority=action.priority.value,
        subject=action.title,
        body=(
            f"{action.customer.name or 'A customer'} answered {action.score} out of 10 "
            f"({action.segment.value}) to the NPS survey.{said}\n\nThe npsloop case: {link}"
        ),
        requester_email=action.customer.email,
        requester_name=action.customer.name,
    )


@dataclass(frozen=True, slots=True)
class Route:
    """How notify handles one type of action command."""

    #: The channel it goes through, by the name bootstrap registers it under.
    channel: str
    #: What its result reports as the channel (a staff notice is emailed, reported `staff`).
    reported: ReportedChannel
    #: The do-not-contact scope of a channel whose provider can say "unsubscribed".
    opt_out: OptOutScope | None = None


#: Each action command notify handles, in one table.
ROUTES: dict[type[Event], Route] = {
    SendEmail: Route("email", ReportedChannel.EMAIL),
    NotifyStaff: Route("email", ReportedChannel.STAFF),
    SendSms: Route("sms", ReportedChannel.SMS, opt_out=OptOutScope.SMS),
    CreateTicket: Route("ticket", ReportedChannel.TICKET),
    RaiseTicketPriority: Route("ticket", ReportedChannel.TICKET),
    RequestResurvey: Route("webhook", ReportedChannel.WEBHOOK),
}
#: A staff notice to `webhook:<name>` goes to that endpoint of the team instead of email.
WEBHOOK_PREFIX = "webhook:"


def channel_of(action: Event) -> str:
    """The name of the channel `action` goes through."""
    if isinstance(action, NotifyStaff) and action.recipient.startswith(WEBHOOK_PREFIX):
        return "webhook"
    return ROUTES[type(action)].channel


def webhook_job(action: NotifyStaff, *, case_url: str) -> WebhookJob:
    return WebhookJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=action.customer_id,
        endpoint=action.recipient.removeprefix(WEBHOOK_PREFIX),
        event_type=f"case.{action.reason.value}",
        at=action.requested_at,
        data={
            "case_id": str(action.case_id),
            "customer_id": action.customer_id,
            **staff_notice(action, case_url=case_url),
        },
    )


#: The `type` of the body a survey tool receives for a re-survey (docs/resurvey.md).
RESURVEY_TYPE = "resurvey.requested"


def resurvey_job(action: RequestResurvey, *, case_url: str) -> WebhookJob:
    """The call asking the survey tool to survey the customer again: whom (the customer, PII:
    the tool must reach them; without an address they opted out of), which survey they
    answered and how, and the case's link. docs/resurvey.md documents the body."""
    customer = action.customer
    return WebhookJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=customer.id,
        endpoint=action.endpoint,
        event_type=RESURVEY_TYPE,
        at=action.requested_at,
        data={
            "case_id": str(action.case_id),
            "case_url": case_url.format(case_id=action.case_id),
            "customer": {
                "id": customer.id,
                "email": customer.email,
                "phone": customer.phone,
                "name": customer.name,
                "locale": customer.locale,
                "timezone": customer.timezone,
            },
            "survey_id": action.survey_id,
            "source": action.source,
            "response_id": str(action.response_id),
            "score": action.score,
            "segment": action.segment.value,
            "closed_at": action.closed_at.isoformat(),
            "rule": action.rule,
        },
        channel=ReportedChannel.WEBHOOK.value,
        template="request_resurvey",
    )


def undeliverable(action: Event, *, endpoints: frozenset[str]) -> str | None:
    """Why notify can never deliver `action` as it is configured (None: it can try). A
    re-survey names one of NOTIFY_WEBHOOKS' endpoints; one that is not there is a
    configuration notify lacks, not a failure of the survey tool: the command goes to the
    dead-letter topic with this reason, to be re-driven once the endpoint is added, rather
    than reported failed for good."""
    if isinstance(action, RequestResurvey) and action.endpoint not in endpoints:
        configured = ", ".join(sorted(endpoints)) or "none"
        return (
            f"no webhook endpoint {action.endpoint!r} in NOTIFY_WEBHOOKS (configured: "
            f"{configured}); add it and re-drive"
        )
    return None
