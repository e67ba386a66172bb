import uuid
from datetime import UTC, datetime

import pytest

from nps_events import Customer, SendEmail
from nps_notify.adapters.email import PermanentFailure, TemplateRenderer


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
    rendered = TemplateRenderer().render(_action('<script>alert("x")</script> & more'))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in rendered.html
    assert '> <script>alert("x")</script> & more' in rendered.text
    assert rendered.subject.startswith("Ada, we are sorry")


def test_email_without_comment_has_no_quote() -> None:
    rendered = TemplateRenderer().render(_action(None))
    assert "You wrote" not in rendered.text
    assert "You wrote" not in rendered.html
    assert "2 out of 10" in rendered.text


def test_unknown_template_is_a_permanent_failure() -> None:
    with pytest.raises(PermanentFailure, match="no email template 'nope'"):
        TemplateRenderer().render(_action(None, template="nope"))


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
    rendered = TemplateRenderer().render(_action("<i>fine</i>", template=template))
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
                TemplateRenderer().render(_action(None, template=action.template))
