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
