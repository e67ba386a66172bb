"""Jira's admin webhook, read as Jira documents it
(https://developer.atlassian.com/cloud/jira/platform/webhooks/)."""

import json

import pytest

from nps_notify.adapters.helpdesk_webhooks import WebhookRefused, parse_jira, verify_jira
from tests.support.fake_jira import FakeJira


def _delivery(to: str = "Done") -> tuple[bytes, dict[str, str]]:
    fake = FakeJira()
    fake.issues["CS-4"] = {"summary": "NPS detractor"}
    body, headers = fake.transition("CS-4", to, secret="s3cret")
    return body, {k.lower(): v for k, v in headers.items()}


def test_a_status_transition_is_read_with_the_delivery_id() -> None:
    body, headers = _delivery()
    verify_jira(headers, body, secrets=["old", "s3cret"])
    change = parse_jira(headers, body)
    assert change is not None
    assert (change.ticket_id, change.status, change.previous_status) == ("CS-4", "done", "to do")
    assert change.event_id == headers["x-atlassian-webhook-identifier"]


@pytest.mark.parametrize(
    "signature", ["", "sha1=abc", "sha256=", "sha256=" + "0" * 64, "not-a-signature"]
)
def test_anything_but_the_secrets_signature_is_refused(signature: str) -> None:
    body, headers = _delivery()
    with pytest.raises(WebhookRefused) as refused:
        verify_jira({**headers, "x-hub-signature": signature}, body, secrets=["s3cret"])
    assert refused.value.status == 401


def test_other_events_are_not_status_changes() -> None:
    body, headers = _delivery()
    event = json.loads(body)
    created = json.dumps({**event, "webhookEvent": "jira:issue_created"}).encode()
    assert parse_jira(headers, created) is None
    no_changelog = json.dumps({k: v for k, v in event.items() if k != "changelog"}).encode()
    assert parse_jira(headers, no_changelog) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"webhookEvent": "jira:issue_updated", "changelog": {"items": [{"field": "status"}]}}',
    ],
)
def test_a_body_that_is_not_a_jira_event_is_400(body: bytes) -> None:
    with pytest.raises(WebhookRefused) as refused:
        parse_jira({}, body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": float("inf")}, "timestamp"),
        ({"timestamp": 10**30}, "timestamp"),
        ({"timestamp": "soon"}, "timestamp"),
        ({"issue": {"id": "10004", "key": "CS-4\u0000"}}, "issue.key"),
        ({"issue": {"id": "10004", "key": ""}}, "issue.key"),
    ],
)
def test_a_value_npsloop_cannot_keep_is_422_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    body, headers = _delivery()
    event = {**json.loads(body), **change}
    with pytest.raises(WebhookRefused) as refused:
        parse_jira(headers, json.dumps(event).encode())
    assert (refused.value.status, refused.value.field) == (422, field)


def test_a_delivery_id_with_a_control_character_is_422() -> None:
    body, headers = _delivery()
    with pytest.raises(WebhookRefused) as refused:
        parse_jira({**headers, "x-atlassian-webhook-identifier": "30001\u0085"}, body)
    assert (refused.value.status, refused.value.field) == (422, "X-Atlassian-Webhook-Identifier")


def test_a_body_nested_too_deep_to_decode_is_400() -> None:
    with pytest.raises(WebhookRefused) as refused:
        parse_jira({}, b"[" * 5000 + b"]" * 5000)
    assert refused.value.status == 400
