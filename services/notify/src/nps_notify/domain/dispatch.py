import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from nps_events.hours import window_end, zone_or


class DispatchState(StrEnum):
    """A dispatch ledger entry. `sending` is written and committed before the provider call."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    #: The provider did not take it and said so (429, 5xx, refused connection), or its
    #: channel's circuit is open: it waits in `notify.parked` for another try.
    DEFERRED = "deferred"


class Decision(StrEnum):
    SEND = "send"
    ALREADY_DONE = "already_done"
    REPORT_UNKNOWN = "report_unknown"


def decide(previous: DispatchState | None, *, provider_dedupes: bool = False) -> Decision:
    """What to do with an action, given what the ledger already says about it.

    - Never seen: send it.
    - `sending`: an earlier attempt was interrupted between our record and the provider's
      answer. The provider may or may not have accepted it. When the provider recognises a
      repeat (`provider_dedupes`: Zendesk's Idempotency-Key), send it again: exactly once.
      Otherwise (SMTP, Twilio offer no way to ask) we choose at most once: never send it
      again, report it as `unknown` so a person checks.
    - `deferred`: the provider refused it for now without taking it: send it again.
    - Anything else: it is done; its result was already queued with the outcome.
    """
    if previous is None or previous is DispatchState.DEFERRED:
        return Decision.SEND
    if previous is DispatchState.SENDING:
        return Decision.SEND if provider_dedupes else Decision.REPORT_UNKNOWN
    return Decision.ALREADY_DONE


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a channel says of one send. `deferred` carries how long the provider asked us to
    wait (`Retry-After`), if it said. `unsubscribed`: the provider refused it because the
    customer unsubscribed from the channel (texted STOP): they go on the do-not-contact list."""

    state: DispatchState
    provider_message_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    unsubscribed: bool = False


@dataclass
class CircuitBreaker:
    """One channel's breaker. After `threshold` consecutive deferrals the circuit opens: for
    `cooldown` seconds the channel's actions are parked without calling the provider (they
    wait rather than burn retries). Then one trial batch goes through: success closes the
    circuit, another deferral opens it again for twice as long (at most `max_cooldown`)."""

    threshold: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    failures: int = 0
    open_until: datetime | None = None
    _current: float = 0.0

    def is_open(self, now: datetime) -> bool:
        return self.open_until is not None and now < self.open_until

    def record(self, *, deferred: bool, now: datetime) -> None:
        if not deferred:
            self.failures, self.open_until, self._current = 0, None, 0.0
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._current = min(self.max_cooldown, self._current * 2 or self.cooldown)
            self.open_until = now + timedelta(seconds=self._current)


@dataclass(frozen=True, slots=True)
class EmailJob:
    """One email to send for one action: to a customer (`SendEmail`) or to a member of the
    customer-success team (`NotifyStaff`). `channel` is what the result reports."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    channel: str
    template: str
    to_address: str | None
    to_name: str | None = None
    context: Mapping[str, object] = field(default_factory=dict)
    #: The reader's language (`fr`, `pt-BR`) and IANA time zone, when known.
    locale: str | None = None
    timezone: str | None = None
    #: The policy team the case belongs to: whose sender identity the email carries.
    team: str | None = None
    #: The case owner's email address, for a team whose replies go to the owner.
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class SmsJob:
    """One text message to a customer (`SendSms`); `to` is E.164 or None when unknown."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    to: str | None
    template: str
    context: Mapping[str, object] = field(default_factory=dict)
    #: (time zone, start, end) of the customer's quiet hours, if the action gave them.
    quiet_hours: tuple[str, str, str] | None = None
    channel: str = "sms"
    locale: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class TicketJob:
    """A helpdesk ticket to open for a case (`CreateTicket`), or the priority of one already
    opened to raise (`RaiseTicketPriority`: `ticket_id` is the helpdesk's id of that ticket,
    None when it was never created)."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    priority: str
    subject: str = ""
    body: str = ""
    requester_email: str | None = None
    requester_name: str | None = None
    raise_of: uuid.UUID | None = None
    ticket_id: str | None = None
    channel: str = "ticket"

    @property
    def template(self) -> str:
        return "raise_priority" if self.raise_of is not None else "create"


@dataclass(frozen=True, slots=True)
class WebhookJob:
    """A staff notice posted to one of the team's webhook endpoints instead of emailed."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    endpoint: str
    event_type: str
    at: datetime
    data: Mapping[str, object] = field(default_factory=dict)
    channel: str = "staff"
    template: str = "webhook"


def quiet_until(now: datetime, *, timezone: str, start: str, end: str) -> datetime | None:
    """The end of the customer's quiet hours when `now` falls inside them, else None, by the
    one rule of `nps_events.hours`. `timezone` is the zone followup resolved for the customer
    (theirs, or the policy's default); UTC only if this host's tz database lacks it."""
    return window_end(
        now, zone_or(timezone, "UTC"), time.fromisoformat(start), time.fromisoformat(end)
    )


# --- SMS: numbers and segments ----------------------------------------------------------------

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

#: The GSM 03.38 default alphabet and its extension table (each extension character costs two
#: septets). A message made only of these is sent in GSM-7; anything else makes it UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def is_e164(number: str) -> bool:
    return E164.fullmatch(number) is not None


def sms_units(text: str) -> tuple[str, int]:
    """The encoding a text needs (`gsm7` or `ucs2`) and its length in that encoding's units:
    septets for GSM-7, UTF-16 code units for UCS-2 (an emoji counts two)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "gsm7", sum(2 if c in GSM7_EXTENDED else 1 for c in text)
    return "ucs2", len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """How many segments a carrier bills for `text`: one of 160 GSM-7 septets (70 UCS-2 units),
    or, when longer, concatenated segments of 153 (67) each."""
    encoding, units = sms_units(text)
    single, multi = (160, 153) if encoding == "gsm7" else (70, 67)
    if units <= single:
        return 1
    return -(-units // multi)


def fit_sms(text: str, max_segments: int) -> str:
    """`text` cut to fit in `max_segments` segments, ending with an ellipsis when cut (three
    dots in GSM-7: a "…" would turn the whole message into UCS-2, less than half the room)."""
    text = text.strip()
    if sms_segments(text) <= max_segments:
        return text
    ellipsis = "..." if sms_units(text)[0] == "gsm7" else "…"
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with its ellipsis
        mid = (low + high + 1) // 2
        if sms_segments(text[:mid].rstrip() + ellipsis) <= max_segments:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis
