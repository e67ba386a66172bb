"""The contact rules: who may be messaged, when, and in which zone. The do-not-contact list,
the frequency cap, consent and addresses hold a message back; delivery and quiet hours move
it, on the customer's own clock."""

from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from nps_events import Customer, QuietHours
from nps_events.hours import zone_or
from nps_followup.domain.calendar import next_inside, next_outside
from nps_followup.domain.policy import ActionKind, Policy


class DoNotContactEntry(NamedTuple):
    """One scope (a channel, or `all`) a customer is on the do-not-contact list for."""

    scope: str
    #: Who put them there: `api` (a person), or the provider that reported the opt-out.
    source: str
    reason: str | None
    at: datetime


class ContactHistory(NamedTuple):
    """What the contact rules know of some customers: the scopes each opted out of, and when
    each was last messaged (for the frequency cap)."""

    opted_out: dict[str, set[str]]
    last_messaged: dict[str, datetime]


def customer_zone(customer: Customer, policy: Policy) -> ZoneInfo:
    """The zone a customer is judged in: theirs when the tz database knows it, else the
    policy's default. Resolved here once; the commands carry the result to notify."""
    return zone_or(customer.timezone, policy.contact.default_customer_timezone)


def quiet_hours_for(customer: Customer, policy: Policy) -> QuietHours:
    """The customer's quiet hours as an SMS command carries them: in the zone resolved by
    `customer_zone`, so that notify judges them where followup planned them."""
    return QuietHours(
        timezone=customer_zone(customer, policy).key,
        start=f"{policy.contact.quiet_hours.start:%H:%M}",
        end=f"{policy.contact.quiet_hours.end:%H:%M}",
    )


def delivery_time(
    kind: ActionKind, *, planned: datetime, delayed: bool, zone: ZoneInfo, policy: Policy
) -> datetime:
    """When a customer message may go out: a scheduled one lands inside the customer's
    delivery hours; an SMS never inside their quiet hours. Tickets go when planned."""
    return scheduled_delivery(kind, planned=planned, delayed=delayed, zone=zone, policy=policy)[0]


def scheduled_delivery(
    kind: ActionKind, *, planned: datetime, delayed: bool, zone: ZoneInfo, policy: Policy
) -> tuple[datetime, str | None]:
    """`delivery_time`, and the contact rule that moved it (`quiet_hours` when both did: it is
    the last word), or None."""
    at, moved_by = planned, None
    if kind is ActionKind.TICKET:
        return at, None
    if delayed:
        at = next_inside(at, zone, policy.contact.delivery_hours)
        moved_by = "delivery_hours" if at != planned else None
    if kind is ActionKind.SMS:
        before = at
        at = next_outside(at, zone, policy.contact.quiet_hours)
        moved_by = "quiet_hours" if at != before else moved_by
    return at, moved_by


def contact_block(
    *,
    kind: ActionKind,
    customer: Customer,
    opted_out: set[str],
    last_message_at: datetime | None,
    exempt: bool,
    cap: timedelta,
    now: datetime,
) -> str | None:
    """Why a customer message must not go out now, or None if it may. Tickets always may."""
    held = held_back(
        kind=kind,
        customer=customer,
        opted_out=opted_out,
        last_message_at=last_message_at,
        exempt=exempt,
        cap=cap,
        now=now,
    )
    return None if held is None else held[1]


def held_back(
    *,
    kind: ActionKind,
    customer: Customer,
    opted_out: set[str],
    last_message_at: datetime | None,
    exempt: bool,
    cap: timedelta,
    now: datetime,
) -> tuple[str, str] | None:
    """(the contact rule, why in words) that holds a customer message back now, or None if
    none does. The rules: `do_not_contact`, `no_address` (no email address or phone number),
    `sms_consent`, `frequency_cap`. Tickets are never held back."""
    if kind is ActionKind.TICKET:
        return None
    reasons = [
        ("all" in opted_out or kind.value in opted_out)
        and ("do_not_contact", f"the customer is on the do-not-contact list ({kind.value})"),
        (kind is ActionKind.EMAIL and customer.email is None)
        and ("no_address", "the customer has no email address"),
        (kind is ActionKind.SMS and customer.phone is None)
        and ("no_address", "the customer has no phone number"),
        (
            kind is ActionKind.SMS
            and customer.attributes.get("sms_consent", "").lower() not in ("yes", "true")
        )
        and ("sms_consent", "the customer has not consented to SMS (attribute sms_consent)"),
        (not exempt and last_message_at is not None and now - last_message_at < cap)
        and (
            "frequency_cap",
            f"frequency cap: the customer was messaged at {last_message_at}, less than {cap} ago",
        ),
    ]
    return next((r for r in reasons if isinstance(r, tuple)), None)
