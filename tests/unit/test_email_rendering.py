import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from nps_events import Customer, NotifyStaff, Segment, SendEmail, StaffReason
from nps_notify.adapters.email import (
    PermanentFailure,
    RenderedEmail,
    SmtpEmailChannel,
    TemplateRenderer,
)
from nps_notify.config import SmtpSettings
from nps_notify.handlers import email_job

CASE_URL = "https://cs.example.com/cases/{case_id}"


def _render(action: SendEmail | NotifyStaff) -> RenderedEmail:
    job = email_job(action, case_url=CASE_URL)
    return TemplateRenderer().render(job.template, job.context)


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
    return channel.message_for(email_job(action, case_url=CASE_URL))


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
