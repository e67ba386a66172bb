"""Email over SMTP (aiosmtplib), rendered from the templates (adapters/templates.py).

No input reaches a header as raw text: the recipient is exactly one bare address (a list, a
comment or a second address is refused: the action fails) and the SMTP envelope names it
alone, the display name and the subject are made one line without invisible format
characters (a line break cannot start a new header such as `Bcc:`, a right-to-left override
cannot reorder the subject: domain/messages.py), and the sender comes from the settings,
checked at start-up. The bytes are written from these parts by adapters/mime.py (RFC 2047
words for text that is not ASCII, text and HTML parts, CRLF, lines within 998), which refuses
a part that would break a line rather than send it.

Every message carries what a receiving mail system checks or uses (docs/notify.md, "Email
headers"): `Date`; a `Message-ID` on the sender's domain, derived from the action id; `From`
and `Reply-To` of the team's sender identity; `In-Reply-To` and `References` naming one thread
per case and reader, so a case's emails to one customer show as one conversation;
`List-Unsubscribe` (and `List-Unsubscribe-Post` with a one-click URL) on a customer's
messages; `Auto-Submitted: auto-generated` on staff notices (RFC 3834: out-of-office replies
are not sent back to an automated notice)."""

import asyncio
import contextlib
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import quote

import aiosmtplib
from aiosmtplib import SMTPStatus
from email_validator import EmailNotValidError, validate_email

from nps_events.text import email_error
from nps_kit.clock import Clock, SystemClock
from nps_kit.logging import get_logger
from nps_notify.adapters.mime import Draft, envelope_address, to_bytes
from nps_notify.adapters.pipelining import Replies, pipelined_transaction
from nps_notify.adapters.templates import PermanentFailure, RenderedEmail, TemplateRenderer
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, EmailJob, Outcome
from nps_notify.domain.messages import Identity, header_text, identity_for

log = get_logger(__name__)

__all__ = [
    "OutgoingEmail",
    "PermanentFailure",
    "RenderedEmail",
    "SmtpEmailChannel",
    "TemplateRenderer",
    "recipient",
]


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One email as it goes to the SMTP server: `MAIL FROM`, the one `RCPT TO`, and `DATA`."""

    sender: str
    recipient: str
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message as a mail client reads it (for previews and tests): stored with the
        local line ends, as a receiving system stores it (the stdlib's parser keeps a 7bit
        part's CRLFs in its content)."""
        message = message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(message, EmailMessage)  # noqa: S101 - what policy.default makes
        return message


def recipient(name: str | None, address: str) -> tuple[str, str]:
    """The `To` of an email: the name as one line of display name, and exactly one address.
    The domain is written in ASCII (an internationalised domain as IDNA); an address whose
    part before the @ is not ASCII needs SMTPUTF8, which notify does not use: it fails.
    email-validator accepts neither a display name, nor a comment, nor a quoted local part,
    nor a second address, so what it accepts is one bare addr-spec (the stdlib's `Address`,
    which parsed it again, cost 29 µs of the ~200 µs an email costs to build)."""
    ascii_address: str | None = address
    if not address.isascii() or email_error(address) is not None:
        try:
            ascii_address = validate_email(
                address, check_deliverability=False, allow_smtputf8=False
            ).ascii_email
        except EmailNotValidError as exc:
            raise PermanentFailure(f"the recipient address cannot be sent to: {exc}") from None
    if ascii_address is None:  # pragma: no cover - allow_smtputf8=False always sets it
        raise PermanentFailure("the recipient address has no ASCII form")
    return header_text(name or ""), ascii_address


def _domain_of(mailbox: str) -> str:
    """The domain of a `Name <user@domain>` or `user@domain` checked by the settings."""
    return mailbox.rpartition("@")[2].rstrip(">").strip()


def _backoff(attempt: int) -> float:
    """Seconds before the next try after `attempt` failed: 0.2, 0.4, 0.8… up to 5, plus up
    to 0.2 of jitter (so kept-open connections dropped together are not all retried at once)."""
    return min(5.0, 0.2 * 2.0 ** (attempt - 1) + random.uniform(0, 0.2))  # noqa: S311 - jitter


async def _transaction(smtp: aiosmtplib.SMTP, message: OutgoingEmail) -> None:
    """One SMTP mail transaction on a connection past EHLO: `MAIL FROM` (with the message's
    `SIZE` where the server takes it, RFC 1870), one `RCPT TO`, `DATA`, with no timer of its
    own (the caller's deadline covers the four answers). What aiosmtplib's `sendmail` does,
    without what cost most of its CPU (docs/performance.md, 2026-12-05): parsing again
    addresses already checked (`recipient`, `envelope_address`), a second pass of its
    line-ending regex over the bytes (for `SIZE`), and a `wait_for` for each answer. A refusal
    raises the exception `sendmail` raises for it."""
    size = [b"SIZE=%d" % len(message.data)] if smtp.supports_extension("size") else []
    sender = message.sender.encode("ascii")
    response = await smtp.execute_command(b"MAIL", b"FROM:<" + sender + b">", *size, timeout=None)
    if response.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, message.sender)
    response = await smtp.execute_command(
        b"RCPT", b"TO:<" + message.recipient.encode("ascii") + b">", timeout=None
    )
    if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
        raise aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(response.code, response.message, message.recipient)]
        )
    await smtp.data(message.data, timeout=None)


@dataclass(slots=True)
class _Connection:
    """One kept-open connection to the relay, and its pipelined replies when the relay
    offers PIPELINING (adapters/pipelining.py); without them, aiosmtplib's exchange."""

    smtp: aiosmtplib.SMTP
    replies: Replies | None

    async def send(self, message: OutgoingEmail) -> None:
        if self.replies is None:
            await _transaction(self.smtp, message)
        else:
            await pipelined_transaction(
                self.replies,
                sender=message.sender,
                recipient=message.recipient,
                data=message.data,
                size=self.smtp.supports_extension("size"),
            )

    def reusable(self, *, sent: bool) -> bool:
        """Connected, and in step with the relay: a pipelined transaction that ended, even
        refused, leaves it so; aiosmtplib's exchange is trusted only after a message sent."""
        in_step = sent if self.replies is None else self.replies.in_step
        return in_step and self.smtp.is_connected

    async def quit(self) -> None:
        """Say goodbye, within the connection's timeout (`SMTP_TIMEOUT_SECONDS`)."""
        if self.replies is None:
            await self.smtp.quit()
            return
        try:
            async with asyncio.timeout(self.smtp.timeout):
                self.replies.write(b"QUIT\r\n")
                await self.replies.next()
        finally:
            self.smtp.close()


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # A 4xx to RCPT (greylisting, a full mailbox, too many recipients now) asks to try
        # again later, as any 4xx does; aiosmtplib raises it apart from the others.
        return bool(exc.recipients) and all(400 <= r.code < 500 for r in exc.recipients)
    return isinstance(
        exc,
        aiosmtplib.SMTPConnectError
        | aiosmtplib.SMTPServerDisconnected
        | aiosmtplib.SMTPTimeoutError
        | OSError,
    )


class SmtpEmailChannel:
    """Sends one email per action over a small pool of kept-open SMTP connections
    (`SMTP_MAX_CONNECTIONS`; a new connection per message costs connect, EHLO, STARTTLS and
    AUTH each time). A connection the
    server closed is dropped and the send retried on a fresh one. The Message-ID is derived
    from the action id, so the recipient's mail system can recognise a copy should one ever
    be sent twice."""

    name = "email"
    dedupes_repeats = False

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        renderer: TemplateRenderer,
        attempts: int,
        clock: Clock | None = None,
        sender: Identity | None = None,
        teams: Mapping[str, Identity] | None = None,
        staff_timezone: str = "UTC",
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._clock = clock or SystemClock()
        self._sender = sender or Identity(
            from_address=settings.from_address,
            reply_to=settings.reply_to,
            brand="npsloop",
            signature="The customer success team",
        )
        self._teams = dict(teams or {})
        self._staff_timezone = staff_timezone
        self._attempts = attempts
        self._idle: list[_Connection] = []
        # At most `SMTP_MAX_CONNECTIONS` open at once: a send waits for one to be free.
        self._slots = asyncio.Semaphore(settings.max_connections)

    def draft_for(self, job: EmailJob) -> Draft:
        """What the email to `job`'s reader says, every part checked (adapters/mime.py)."""
        if job.to_address is None:
            raise PermanentFailure("the recipient has no email address")
        sender = identity_for(job.team, teams=self._teams, default=self._sender)
        to_customer = job.channel == "email"  # else to a person of the team
        now = self._clock.now()
        rendered = self._renderer.render(
            job.template,
            {"brand": sender.brand, "signature": sender.signature, **job.context},
            locale=job.locale if to_customer else (job.locale or sender.staff_locale),
            timezone=job.timezone if to_customer else (job.timezone or self._staff_timezone),
            now=now,
        )
        domain = self._settings.message_id_domain or _domain_of(sender.from_address)
        to_name, to_address = recipient(job.to_name, job.to_address)
        return Draft(
            date=now,
            sender=sender.from_address,
            to_name=to_name,
            to_address=to_address,
            reply_to=self._reply_to(sender, job.owner if to_customer else None),
            subject=header_text(rendered.subject),
            message_id=f"<{job.action_id}@{domain}>",
            # One thread per case and reader: every email names the same (never sent) root,
            # which mail clients group by, as they group a conversation's replies.
            thread=f"<case.{job.case_id}{'' if to_customer else '.staff'}@{domain}>",
            list_unsubscribe=self._unsubscribe(job.customer_id) if to_customer else None,
            one_click=bool(self._settings.unsubscribe_url),
            auto_submitted=not to_customer,
            text=rendered.text,
            html=rendered.html,
            language=rendered.locale or None,
            boundary=job.action_id.hex,
        )

    def message_for(self, job: EmailJob) -> OutgoingEmail:
        """The email to send for `job`: its envelope and its bytes."""
        draft = self.draft_for(job)
        return OutgoingEmail(
            sender=envelope_address(draft.sender),
            recipient=draft.to_address,
            message_id=draft.message_id,
            data=to_bytes(draft),
        )

    @staticmethod
    def _reply_to(sender: Identity, owner: str | None) -> str | None:
        """Where a reply goes: the case's owner when the team says so, and the team's inbox."""
        to = [sender.reply_to] if sender.reply_to else []
        if sender.reply_to_owner and owner:
            with contextlib.suppress(PermanentFailure):  # the team's inbox, then, if any
                to.insert(0, recipient(None, owner)[1])
        return ", ".join(to) or None

    def _unsubscribe(self, customer_id: str) -> str:
        subject = quote(f"unsubscribe {customer_id}")
        links = [f"<mailto:{self._settings.unsubscribe_mailto}?subject={subject}>"]
        if self._settings.unsubscribe_url:
            url = self._settings.unsubscribe_url.format(customer_id=quote(customer_id, safe=""))
            links.insert(0, f"<{url}>")
        return ", ".join(links)

    async def _connect(self) -> _Connection:
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            timeout=s.timeout_seconds,
            local_hostname=s.local_hostname,
            tls_context=ssl.create_default_context() if s.security != "none" else None,
        )
        await smtp.connect()
        if s.username:
            await smtp.login(s.username, s.password.get_secret_value() if s.password else "")
        if smtp.is_ehlo_or_helo_needed:  # what the server offers (SIZE) is known before MAIL
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()
        pipelining = s.pipelining and smtp.supports_extension("pipelining")
        log.info("smtp.connected", host=s.host, port=s.port, pipelining=pipelining)
        return _Connection(smtp, Replies.install(smtp) if pipelining else None)

    async def _deliver(self, message: OutgoingEmail) -> None:
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            deadline = self._settings.timeout_seconds
            sent = False
            try:
                async with asyncio.timeout(deadline):
                    await connection.send(message)
                sent = True
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError(
                    f"the SMTP server did not answer within {deadline} s"
                ) from None
            finally:
                if connection.reusable(sent=sent):
                    self._idle.append(connection)
                else:
                    connection.smtp.close()  # its state is unknown: never reuse it

    async def aclose(self) -> None:
        """Say goodbye on every kept-open connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await connection.quit()

    async def send(self, job: EmailJob) -> Outcome:
        try:
            message = self.message_for(job)
        except PermanentFailure as exc:
            return Outcome(DispatchState.FAILED, reason=str(exc))
        except Exception as exc:  # nothing was handed to the server: it failed, for good
            return Outcome(
                DispatchState.FAILED,
                reason=f"the email could not be built: {type(exc).__name__}: {exc}",
            )
        for attempt in range(1, self._attempts + 1):
            try:
                await self._deliver(message)
                break
            except (aiosmtplib.SMTPException, OSError) as exc:
                if attempt >= self._attempts or not _transient(exc):
                    return Outcome(DispatchState.FAILED, reason=f"SMTP: {exc}")
            await asyncio.sleep(_backoff(attempt))
        return Outcome(DispatchState.SENT, provider_message_id=message.message_id)
