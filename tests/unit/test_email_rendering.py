import unicodedata
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from pydantic import ValidationError

from nps_events import Customer, NotifyStaff, Segment, SendEmail, StaffReason
from nps_kit.clock import FrozenClock
from nps_notify.adapters.email import (
    OutgoingEmail,
    PermanentFailure,
    RenderedEmail,
    SmtpEmailChannel,
    TemplateRenderer,
)
from nps_notify.config import NotifySettings, SmtpSettings
from nps_notify.domain.messages import Identity
from nps_notify.handlers import email_job

CASE_URL = "https://cs.example.com/cases/{case_id}"


#: What the channel adds to every context: the sender identity's brand and signature.
IDENTITY = {"brand": "Example Shop", "signature": "The customer success team"}


def _render(action: SendEmail | NotifyStaff) -> RenderedEmail:
    job = email_job(action, case_url=CASE_URL)
    return TemplateRenderer().render(job.template, {**IDENTITY, **job.context}, locale=job.locale)


def _action(comment: str | None, template: str = "detractor_apology") -> SendEmail:
    return SendEmail(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-1", email="ada@example.com", name="Ada"),
        template=template,
        score=2,
        comment=comment,
        requested_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


def test_customer_comment_is_quoted_and_stays_inert_in_html() -> None:
    rendered = _render(_action('<script>alert("x")</script> & more'))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in rendered.html
    assert '> <script>alert("x")</script> & more' in rendered.text
    assert rendered.subject.startswith("Ada, we are sorry")


def test_email_without_comment_has_no_quote() -> None:
    rendered = _render(_action(None))
    assert "You wrote" not in rendered.text
    assert "You wrote" not in rendered.html
    assert "2 out of 10" in rendered.text


def test_unknown_template_is_a_permanent_failure() -> None:
    with pytest.raises(PermanentFailure, match="no email template 'nope'"):
        _render(_action(None, template="nope"))


@pytest.mark.parametrize(
    ("template", "subject", "phrase"),
    [
        ("detractor_acknowledgement", "Ada, we hear you", "within two business days"),
        ("passive_education", "Ada, a few things", "you may be missing"),
        ("promoter_thank_you", "Thank you, Ada", "an introduction"),
    ],
)
def test_every_template_of_the_default_policy_renders(
    template: str, subject: str, phrase: str
) -> None:
    rendered = _render(_action("<i>fine</i>", template=template))
    assert rendered.subject.startswith(subject)
    assert phrase in rendered.text
    assert phrase in rendered.html
    assert "<i>fine</i>" not in rendered.html


def test_the_default_policy_names_only_templates_that_exist() -> None:
    from nps_followup.adapters.policy_file import default_policy_text, parse_policy  # noqa: PLC0415

    policy = parse_policy(default_policy_text())
    for rule in policy.rules:
        for action in rule.actions:
            if action.kind.value == "email":
                assert action.template is not None
                _render(_action(None, template=action.template))


def _notice(reason: StaffReason, recipient: str = "lead@example.com") -> NotifyStaff:
    return NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.UUID("00000000-0000-4000-8000-0000000000c5"),
        customer_id="c-1",
        recipient=recipient,
        role="second_level" if reason is StaffReason.ESCALATION else "owner",
        reason=reason,
        level=2 if reason is StaffReason.ESCALATION else 0,
        due_at=datetime(2026, 11, 26, 17, tzinfo=UTC),
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("reason", "subject", "phrase"),
    [
        (StaffReason.REMINDER, "Reminder: an NPS detractor", "has not been contacted yet"),
        (StaffReason.ESCALATION, "Escalation (level 2)", "You are the second level"),
        (StaffReason.ASSIGNED, "A new NPS detractor case is yours", "was assigned to you"),
    ],
)
def test_staff_notice_says_why_and_links_the_case(
    reason: StaffReason, subject: str, phrase: str
) -> None:
    rendered = _render(_notice(reason))
    assert rendered.subject.startswith(subject)
    assert phrase in rendered.text
    assert "https://cs.example.com/cases/00000000-0000-4000-8000-0000000000c5" in rendered.text
    assert (
        'href="https://cs.example.com/cases/00000000-0000-4000-8000-0000000000c5"' in rendered.html
    )


def test_staff_notice_goes_to_the_recipient_address_and_reports_as_staff() -> None:
    job = email_job(_notice(StaffReason.REMINDER), case_url=CASE_URL)
    assert (job.to_address, job.channel, job.template) == (
        "lead@example.com",
        "staff",
        "staff_notice",
    )


@pytest.mark.parametrize("recipient", ["@sam", "ok@team.example, outsider@example.org"])
def test_a_staff_notice_goes_to_one_address_or_a_webhook_and_nothing_else(recipient: str) -> None:
    with pytest.raises(ValidationError, match="one email address"):
        _notice(StaffReason.REMINDER, recipient=recipient)


def _message(action: SendEmail | NotifyStaff, **smtp: object) -> EmailMessage:
    channel = SmtpEmailChannel(
        SmtpSettings.model_validate(smtp), renderer=TemplateRenderer(), attempts=1
    )
    return channel.message_for(email_job(action, case_url=CASE_URL)).parsed()


def test_every_customer_message_says_how_to_unsubscribe() -> None:
    message = _message(_action("slow"), unsubscribe_mailto="optout@shop.example")
    assert message["List-Unsubscribe"] == "<mailto:optout@shop.example?subject=unsubscribe%20c-1>"
    assert message["List-Unsubscribe-Post"] is None  # no one-click URL configured


def test_a_one_click_url_comes_first_with_the_rfc_8058_post_header() -> None:
    message = _message(
        _action("slow"), unsubscribe_url="https://shop.example/optout?customer={customer_id}"
    )
    assert str(message["List-Unsubscribe"]).startswith(
        "<https://shop.example/optout?customer=c-1>, <mailto:"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_staff_notice_has_no_unsubscribe_header() -> None:
    assert _message(_notice(StaffReason.REMINDER))["List-Unsubscribe"] is None


def test_a_message_is_multipart_text_and_html() -> None:
    message = _message(_action("<script>alert(1)</script>"))
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()


@pytest.mark.parametrize(
    "settings",
    [
        {"from_address": "npsloop <noreply@example.com>, other@example.org"},
        {"from_address": "noreply@example.com\r\nBcc: x@example.org"},
        {"from_address": "npsloop"},
        {"unsubscribe_mailto": "Opt out <optout@shop.example>"},
        {"unsubscribe_url": "https://shop.example/optout?c={customer_id}&x={other}"},
        {"unsubscribe_url": "https://shop.example/optout?c={customer_id}\r\nX: y"},
        {"message_id_domain": "npsloop.example>\r\nX: y"},
    ],
)
def test_the_sender_settings_are_one_address_and_one_line_or_notify_does_not_start(
    settings: dict[str, str],
) -> None:
    with pytest.raises(ValidationError):
        SmtpSettings.model_validate(settings)


def test_the_default_and_deployed_senders_are_accepted() -> None:
    for sender in ("npsloop <noreply@npsloop.localhost>", "npsloop <noreply@example.invalid>"):
        assert SmtpSettings(from_address=sender).from_address == sender


# --- what a receiving mail system checks: every message type, parsed strictly -----------------

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
ACME = Identity(
    from_address="Acme care <care@acme.example>",
    reply_to="Acme customer success <cs@acme.example>",
    brand="Acme",
    signature="Sam Rivera\nAcme customer success",
)


def _channel(**smtp: object) -> SmtpEmailChannel:
    return SmtpEmailChannel(
        SmtpSettings.model_validate(
            {"from_address": "Example Shop <noreply@shop.example>", "reply_to": "cs@shop.example"}
            | smtp
        ),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(NOW),
        teams={"enterprise": ACME},
    )


def _strictly_parsed(message: OutgoingEmail) -> EmailMessage:
    """The message as a receiving system reads it: its bytes parsed by the stdlib's parser
    with the strict policy, which raises on any defect instead of noting it."""
    parsed = BytesParser(policy=policy.strict).parsebytes(message.data.replace(b"\r\n", b"\n"))
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        assert not part.defects, part.defects
    return parsed


def _every_message() -> list[SendEmail | NotifyStaff]:
    customers: list[SendEmail | NotifyStaff] = [
        _action("slow", template=t)
        for t in (
            "detractor_acknowledgement",
            "detractor_apology",
            "passive_education",
            "promoter_thank_you",
        )
    ]
    return customers + [_notice(reason) for reason in StaffReason]


@pytest.mark.parametrize("action", _every_message(), ids=lambda a: getattr(a, "template", "staff"))
def test_every_message_type_parses_strictly_with_the_headers_a_mail_server_checks(
    action: SendEmail | NotifyStaff,
) -> None:
    message = _strictly_parsed(_channel().message_for(email_job(action, case_url=CASE_URL)))
    assert message["Date"].datetime == NOW
    assert str(message["From"]) == "Example Shop <noreply@shop.example>"
    assert str(message["Reply-To"]) == "cs@shop.example"
    assert message["Message-ID"] == f"<{action.action_id}@shop.example>"
    to_customer = isinstance(action, SendEmail)
    thread = f"<case.{action.case_id}{'' if to_customer else '.staff'}@shop.example>"
    assert (message["In-Reply-To"], message["References"]) == (thread, thread)
    assert message["MIME-Version"] == "1.0"
    if to_customer:
        assert message["List-Unsubscribe"] is not None
        assert message["Auto-Submitted"] is None
    else:
        assert message["List-Unsubscribe"] is None
        assert message["Auto-Submitted"] == "auto-generated"


def test_two_emails_of_one_case_to_its_customer_are_one_thread_and_two_messages() -> None:
    first = _action("slow", template="detractor_acknowledgement")
    second = first.model_copy(update={"action_id": uuid.uuid4(), "template": "detractor_apology"})
    a, b = (
        _channel().message_for(email_job(x, case_url=CASE_URL)).parsed() for x in (first, second)
    )
    assert a["References"] == b["References"]
    assert a["Message-ID"] != b["Message-ID"]


def test_a_message_id_domain_setting_wins_over_the_senders() -> None:
    message = (
        _channel(message_id_domain="mail.shop.example")
        .message_for(email_job(_action(None), case_url=CASE_URL))
        .parsed()
    )
    assert str(message["Message-ID"]).endswith("@mail.shop.example>")


def test_without_a_reply_to_setting_there_is_no_reply_to_header() -> None:
    channel = SmtpEmailChannel(
        SmtpSettings(), renderer=TemplateRenderer(), attempts=1, clock=FrozenClock(NOW)
    )
    message = _strictly_parsed(channel.message_for(email_job(_action(None), case_url=CASE_URL)))
    assert message["Reply-To"] is None
    assert str(message["Message-ID"]).endswith("@npsloop.localhost>")


def test_a_teams_messages_carry_its_sender_identity_and_signature() -> None:
    action = _action(None).model_copy(update={"team": "enterprise"})
    message = _strictly_parsed(_channel().message_for(email_job(action, case_url=CASE_URL)))
    assert str(message["From"]) == "Acme care <care@acme.example>"
    assert str(message["Reply-To"]) == "Acme customer success <cs@acme.example>"
    assert str(message["Message-ID"]).endswith("@acme.example>")
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().rstrip().endswith("Sam Rivera\nAcme customer success")
    assert "Sam Rivera<br>Acme customer success" in html.get_content()


def test_a_team_without_an_identity_of_its_own_gets_the_default() -> None:
    action = _action(None).model_copy(update={"team": "smb"})
    message = _channel().message_for(email_job(action, case_url=CASE_URL)).parsed()
    assert str(message["From"]) == "Example Shop <noreply@shop.example>"


def test_the_team_sender_settings_fill_what_a_team_leaves_out_from_the_defaults() -> None:
    settings = NotifySettings.model_validate(
        {
            "brand": "Example Shop",
            "smtp": {"from_address": "Example Shop <noreply@shop.example>"},
            "senders": {"enterprise": {"brand": "Acme", "reply_to": "cs@acme.example"}},
        }
    )
    acme = settings.identities()["enterprise"]
    assert (acme.brand, acme.reply_to, acme.from_address) == (
        "Acme",
        "cs@acme.example",
        "Example Shop <noreply@shop.example>",
    )


@pytest.mark.parametrize(
    "sender", [{"from_address": "a@x.example, b@y.example"}, {"reply_to": "x\r\nBcc: y@z"}]
)
def test_a_team_sender_is_one_address_or_notify_does_not_start(sender: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        NotifySettings.model_validate({"senders": {"enterprise": sender}})


# --- text npsloop does not control --------------------------------------------------------------

#: U+202E (right-to-left override) would make the subject read "…gnp.exe" backwards; U+200D
#: (zero-width joiner) and U+200B (zero-width space) hide inside it.
SPOOF = "Ada\u202eexe.gnp\u200d\u200b"


def test_a_name_with_a_bidi_override_and_zero_width_characters_cannot_reorder_the_subject() -> None:
    action = SendEmail(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-1", email="ada@example.com", name=SPOOF),
        template="detractor_apology",
        score=2,
        comment=f"fine\u2066 until \u202edelivery{SPOOF}",
        requested_at=NOW,
    )
    message = _strictly_parsed(_channel().message_for(email_job(action, case_url=CASE_URL)))
    for header in ("Subject", "To"):
        value = str(message[header])
        assert not any(unicodedata.category(c) == "Cf" for c in value), (header, value)
    assert str(message["Subject"]).startswith("Adaexe.gnp, we are sorry")
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Hello Ada[U+202E]exe.gnp\u200d," in body  # shown; the joiner kept (emoji need it)
    assert "fine[U+2066] until [U+202E]delivery" in body
    assert not set(body) & set("\u202e\u2066\u200b")


def test_a_staff_notice_says_who_what_by_when_how_far_up_and_where() -> None:
    notice = _notice(StaffReason.ASSIGNED).model_copy(
        update={
            "customer_name": "Ada\u202e Lovelace",
            "comment": "word " * 100,
            "timezone": "Europe/Paris",
            "due_at": datetime(2026, 12, 7, 16, tzinfo=UTC),
        }
    )
    message = _channel().message_for(email_job(notice, case_url=CASE_URL)).parsed()
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Customer: Ada[U+202E] Lovelace" in body
    assert "Score: 2 out of 10 (detractor)" in body
    quoted = body.split('They wrote: "')[1].split('"')[0]
    assert quoted.endswith("…")
    assert len(quoted) <= 280
    # In the team's time zone (17:00 in Paris), in words from now (NOW is 4 December, 15:30);
    # CLDR puts a narrow no-break space before PM.
    assert (
        "Monday, December 7, 2026, 5:00\u202fPM Central European Standard Time (in 3 days)" in body
    )
    assert "Escalation level: none" in body
    assert "https://cs.example.com/cases/00000000-0000-4000-8000-0000000000c5" in body
    assert str(message["Subject"]) == "A new NPS detractor case is yours: Ada Lovelace (2/10)"


def test_a_staff_notice_without_the_teams_zone_uses_the_staff_time_zone() -> None:
    notice = _notice(StaffReason.REMINDER).model_copy(update={"due_at": NOW + timedelta(hours=5)})
    channel = SmtpEmailChannel(
        SmtpSettings(),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(NOW),
        staff_timezone="America/New_York",
    )
    body = channel.message_for(email_job(notice, case_url=CASE_URL)).parsed().get_body(("plain",))
    assert body is not None
    assert "is due in 5 hours, by Friday, December 4, 2026, 3:30\u202fPM Eastern Standard Time" in (
        body.get_content()
    )


@pytest.mark.parametrize(
    ("locale", "subject", "deadline"),
    [
        ("fr", "Rappel : un détracteur NPS attend votre appel", "vendredi 4 décembre 2026"),
        ("es", "Recordatorio: un detractor de NPS espera su llamada", "4 de diciembre de 2026"),
        ("pt", "Lembrete: um detrator do NPS aguarda sua ligação", "4 de dezembro de 2026"),
        ("de", "Erinnerung: ein NPS-Kritiker wartet auf Ihren Anruf", "Freitag, 4. Dezember 2026"),
    ],
)
def test_a_team_gets_its_staff_notices_in_its_language(
    locale: str, subject: str, deadline: str
) -> None:
    notice = _notice(StaffReason.REMINDER).model_copy(
        update={"team": "enterprise", "due_at": NOW + timedelta(hours=5)}
    )
    channel = SmtpEmailChannel(
        SmtpSettings(),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(NOW),
        teams={"enterprise": Identity("a@acme.example", None, "Acme", "Acme", staff_locale=locale)},
    )
    message = _strictly_parsed(channel.message_for(email_job(notice, case_url=CASE_URL)))
    # The stdlib folds a subject that does not fit after "Subject:" onto the next line whole,
    # and its parser keeps that line's leading space (mail clients trim it).
    assert str(message["Subject"]).strip().startswith(subject)
    assert message["Content-Language"] == locale
    body = message.get_body(("plain",))
    assert body is not None
    assert deadline in body.get_content()


def test_a_team_that_says_so_has_replies_reach_the_cases_owner_then_its_inbox() -> None:
    action = _action(None).model_copy(update={"team": "enterprise", "owner": "kim@acme.example"})
    owned = SmtpEmailChannel(
        SmtpSettings(),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(NOW),
        teams={"enterprise": replace(ACME, reply_to_owner=True)},
    )
    message = _strictly_parsed(owned.message_for(email_job(action, case_url=CASE_URL)))
    assert [a.addr_spec for a in message["Reply-To"].addresses] == [
        "kim@acme.example",
        "cs@acme.example",
    ]
    # Without the setting, or without an owner, the team's inbox alone.
    for channel, job in (
        (_channel(), email_job(action, case_url=CASE_URL)),
        (owned, email_job(action.model_copy(update={"owner": None}), case_url=CASE_URL)),
    ):
        assert str(channel.message_for(job).parsed()["Reply-To"]) == (
            "Acme customer success <cs@acme.example>"
        )
