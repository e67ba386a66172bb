"""Notify's use case: dispatch actions at most once each, and report every outcome."""

import asyncio
import uuid
from typing import Protocol

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    CreateTicket,
    Event,
    NotifyStaff,
    RaiseTicketPriority,
    SendEmail,
    SendSms,
)
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.logging import get_logger
from nps_notify.adapters.repository import NotifyRepository
from nps_notify.domain.dispatch import Decision, DispatchState, EmailJob, Outcome, decide

log = get_logger(__name__)

INTERRUPTED = (
    "an earlier attempt was interrupted after the message was handed to the provider; "
    "it is not sent again (never twice): check whether the customer received it"
)


class EmailChannel(Protocol):
    name: str

    async def send(self, job: EmailJob) -> Outcome:
        """Hand one message to the provider; never raises for a provider failure."""
        ...


def email_job(action: SendEmail | NotifyStaff, *, case_url: str) -> EmailJob:
    """The email an action asks for: to the customer, or to a person of the team (who gets the
    case's link and no customer PII)."""
    if isinstance(action, SendEmail):
        return EmailJob(
            action_id=action.action_id,
            case_id=action.case_id,
            customer_id=action.customer.id,
            channel=Channel.EMAIL.value,
            template=action.template,
            to_address=action.customer.email,
            to_name=action.customer.name,
            context={
                "name": action.customer.name,
                "score": action.score,
                "comment": action.comment,
            },
        )
    return EmailJob(
        action_id=action.action_id,
        case_id=action.case_id,
        customer_id=action.customer_id,
        channel=Channel.STAFF.value,
        template="staff_notice",
        to_address=action.recipient if "@" in action.recipient.strip("@") else None,
        context={
            "reason": action.reason.value,
            "role": action.role,
            "level": action.level,
            "due_at": action.due_at.isoformat() if action.due_at else None,
            "segment": action.segment.value,
            "score": action.score,
            "case_url": case_url.format(case_id=action.case_id),
        },
    )


async def dispatch_emails(
    jobs: list[EmailJob],
    *,
    sessions: SessionFactory,
    channel: EmailChannel,
    clock: Clock,
    concurrency: int,
) -> dict[uuid.UUID, Outcome]:
    """Send each email not sent before; record and report each outcome.

    The ledger row is committed as `sending` before the provider call and updated with the
    outcome after it, together with the outbox row of the result.
    """
    unique = list({j.action_id: j for j in jobs}.values())
    async with unit_of_work(sessions) as session:
        previous = await NotifyRepository(session).begin_dispatches(unique, now=clock.now())
    outcomes: dict[uuid.UUID, Outcome] = {}
    to_send: list[EmailJob] = []
    for job in unique:
        decision = decide(previous.get(job.action_id))
        if decision is Decision.SEND:
            to_send.append(job)
        elif decision is Decision.REPORT_UNKNOWN:
            log.warning("dispatch.interrupted_earlier", action_id=str(job.action_id))
            outcomes[job.action_id] = Outcome(DispatchState.UNKNOWN, reason=INTERRUPTED)

    gate = asyncio.Semaphore(concurrency)

    async def send(job: EmailJob) -> None:
        async with gate:
            outcomes[job.action_id] = await channel.send(job)

    await asyncio.gather(*(send(j) for j in to_send))
    if not outcomes:
        return outcomes
    now = clock.now()
    by_id = {j.action_id: j for j in unique}
    results: list[Event] = []
    async with unit_of_work(sessions) as session:
        repo = NotifyRepository(session)
        for action_id, outcome in outcomes.items():
            await repo.finish_dispatch(action_id, outcome, now=now)
            job = by_id[action_id]
            results.append(
                ActionResultReported(
                    action_id=action_id,
                    case_id=job.case_id,
                    customer_id=job.customer_id,
                    channel=Channel(job.channel),
                    status=ActionStatus(outcome.state.value),
                    provider_message_id=outcome.provider_message_id,
                    reason=outcome.reason,
                    occurred_at=now,
                )
            )
            log.info("dispatch.finished", action_id=str(action_id), state=outcome.state.value)
        await repo.publish_later(results, now=now)
    return outcomes


#: Action commands notify has no channel for yet, and the channel each needs.
UNSUPPORTED: dict[type[Event], Channel] = {
    SendSms: Channel.SMS,
    CreateTicket: Channel.TICKET,
    RaiseTicketPriority: Channel.TICKET,
}


def _customer_id(action: Event) -> str:
    customer = getattr(action, "customer", None)
    return str(customer.id) if customer is not None else str(action.partition_key())


async def report_unsupported(
    actions: list[Event], *, sessions: SessionFactory, clock: Clock
) -> None:
    """Answer each action of a channel notify does not have with a failed result, so that the
    case shows it (rather than dead-lettering a valid command). The result's id derives from
    the action's, so a redelivered action reports once."""
    now = clock.now()
    results: list[Event] = []
    for action in actions:
        channel = UNSUPPORTED[type(action)]
        action_id = action.event_id()
        results.append(
            ActionResultReported(
                action_id=action_id,
                case_id=getattr(action, "case_id"),  # noqa: B009 - every action command has one
                customer_id=_customer_id(action),
                channel=channel,
                status=ActionStatus.FAILED,
                reason=f"no {channel.value} channel is configured",
                occurred_at=now,
            )
        )
        log.info("dispatch.no_channel", action_id=str(action_id), channel=channel.value)
    async with unit_of_work(sessions) as session:
        await NotifyRepository(session).publish_later(results, now=now)
