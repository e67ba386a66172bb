"""The reference for notify's MIME writer (nps_notify/adapters/mime.py): the same `Draft`
built with the stdlib's `EmailMessage` (policy.default), as notify built every email before
it wrote the bytes itself, and written as aiosmtplib's `send_message` wrote it (`policy.SMTP`)."""

from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from io import BytesIO

from nps_notify.adapters.mime import Draft


def stdlib_message(draft: Draft) -> EmailMessage:
    message = EmailMessage(policy=policy.default)
    message["Date"] = format_datetime(draft.date)
    message["From"] = draft.sender
    message["To"] = Address(display_name=draft.to_name, addr_spec=draft.to_address)
    if draft.reply_to:
        message["Reply-To"] = draft.reply_to
    message["Subject"] = draft.subject
    message["Message-ID"] = draft.message_id
    message["In-Reply-To"] = draft.thread
    message["References"] = draft.thread
    if draft.list_unsubscribe is not None:
        message["List-Unsubscribe"] = draft.list_unsubscribe
        if draft.one_click:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if draft.auto_submitted:
        message["Auto-Submitted"] = "auto-generated"
    message.set_content(draft.text)
    message.add_alternative(draft.html, subtype="html")
    if draft.language:
        message["Content-Language"] = draft.language
    return message


def stdlib_bytes(draft: Draft) -> bytes:
    out = BytesIO()
    BytesGenerator(out, policy=policy.SMTP).flatten(stdlib_message(draft))
    return out.getvalue()
