"""Email over SMTP (aiosmtplib), rendered from Jinja2 templates.

No input reaches a header as raw text: the recipient is an `Address` built from exactly one
address (a list, a comment or a second address is refused: the action fails), the display
name and the subject are made one line (a line break cannot start a new header such as
`Bcc:`), and the sender comes from the settings, checked at start-up."""

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import quote

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from nps_events.text import clean_line, email_error
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, EmailJob, Outcome


class PermanentFailure(Exception):  # noqa: N818 - an outcome, named for what it is
    """The message can never be sent as it is (unknown template, address refused, …)."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateRenderer:
    """Renders `templates/<name>/{subject.txt,body.txt,body.html}.j2`. HTML is autoescaped, so
    a customer's comment full of markup or script stays inert."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("nps_notify", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=False,
            keep_trailing_newline=True,
        )

    def render(self, template: str, context: Mapping[str, object]) -> RenderedEmail:
        try:
            return RenderedEmail(
                subject=self._env.get_template(f"{template}/subject.txt.j2")
                .render(context)
                .strip(),
                text=self._env.get_template(f"{template}/body.txt.j2").render(context),
                html=self._env.get_template(f"{template}/body.html.j2").render(context),
            )
        except TemplateNotFound as exc:
            raise PermanentFailure(f"no email template {template!r}") from exc

    def render_sms(self, template: str, context: Mapping[str, object]) -> str:
        """`templates/<name>/sms.txt.j2`: plain text, no markup."""
        try:
            return self._env.get_template(f"{template}/sms.txt.j2").render(context).strip()
        except TemplateNotFound as exc:
            raise PermanentFailure(f"no SMS template {template!r}") from exc


def recipient(name: str | None, address: str) -> Address:
    """The `To` of an email: exactly one address, with the name as one line of display name.
    The domain is written in ASCII (an internationalised domain as IDNA); an address whose
    part before the @ is not ASCII needs SMTPUTF8, which notify does not use: it fails."""
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
    try:
        return Address(display_name=clean_line(name or ""), addr_spec=ascii_address)
    except ValueError as exc:
        raise PermanentFailure(f"the recipient address cannot be sent to: {exc}") from None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    return isinstance(
        exc,
        aiosmtplib.SMTPConnectError
        | aiosmtplib.SMTPServerDisconnected
        | aiosmtplib.SMTPTimeoutError
        | OSError,
    )


class SmtpEmailChannel:
    """Sends one email per action over a small pool of kept-open SMTP connections (a new
    connection per message costs connect, EHLO, STARTTLS and AUTH each time). A connection the
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
        pool_size: int = 4,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._attempts = attempts
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(pool_size)

    def message_for(self, job: EmailJob) -> EmailMessage:
        if job.to_address is None:
            raise PermanentFailure("the recipient has no email address")
        rendered = self._renderer.render(job.template, job.context)
        message = EmailMessage()
        message["From"] = self._settings.from_address
        message["To"] = recipient(job.to_name, job.to_address)
        message["Subject"] = clean_line(rendered.subject)
        message["Message-ID"] = f"<{job.action_id}@{self._settings.message_id_domain}>"
        if job.channel == "email":  # to a customer, not to a person of the team
            message["List-Unsubscribe"] = self._unsubscribe(job.customer_id)
            if self._settings.unsubscribe_url:
                message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def _unsubscribe(self, customer_id: str) -> str:
        subject = quote(f"unsubscribe {customer_id}")
        links = [f"<mailto:{self._settings.unsubscribe_mailto}?subject={subject}>"]
        if self._settings.unsubscribe_url:
            url = self._settings.unsubscribe_url.format(customer_id=quote(customer_id, safe=""))
            links.insert(0, f"<{url}>")
        return ", ".join(links)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            timeout=s.timeout_seconds,
            tls_context=ssl.create_default_context() if s.security != "none" else None,
        )
        await smtp.connect()
        if s.username:
            await smtp.login(s.username, s.password.get_secret_value() if s.password else "")
        return smtp

    async def _deliver(self, message: EmailMessage) -> None:
        async with self._slots:
            smtp = self._idle.pop() if self._idle else await self._connect()
            try:
                await smtp.send_message(message)
            except BaseException:
                smtp.close()  # its state is unknown: never reuse it
                raise
            if smtp.is_connected:
                self._idle.append(smtp)

    async def aclose(self) -> None:
        """Say goodbye on every kept-open connection."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()

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
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.2),
                reraise=True,
            ):
                with attempt:
                    await self._deliver(message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(DispatchState.FAILED, reason=f"SMTP: {exc}")
        return Outcome(DispatchState.SENT, provider_message_id=str(message["Message-ID"]))
