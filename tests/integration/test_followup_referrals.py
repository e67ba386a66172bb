"""Issue #16 §4 on the real components: a passive's email in the SMTP sink carries the page the
policy gives for their comment's theme, a promoter's carries their referral link (followup's
sweeper on PostgreSQL plans it, notify renders and sends it); a referral posted with that
code is recorded on the promoter's case once, however often it is posted, and an unknown
code is a 404 problem."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import func, select

from nps_events import SendEmail, decode
from nps_followup.adapters import tables as followup_tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case
from nps_followup.domain.referrals import ReferralCodes, referral_code
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce, get_case, sweep_due_timers
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import create_app
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import ledger_in
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher
from tests.support.cases import detractor_case
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SECRET = b"integration-referral-secret-0123"
AGENT = "alex@example.com"

_TEXT = (
    default_policy_text().replace(
        "        template: passive_education\n        after: 1 day\n",
        "        template: passive_education\n        after: 1 day\n"
        "    content_by_theme:\n"
        "      onboarding: {title: Your first week, url: 'https://help.example.com/start?a=1&b=2'}\n"
        "      price:\n"
        "        title: What each plan includes <compared>\n"
        "        url: 'https://example.com/plans'\n"
        "        summary: Every plan, side by side.\n"
        "    default_content: {title: Tips, url: 'https://example.com/tips'}\n",
        1,
    )
    + "referral: {url: 'https://example.com/r/{code}?src=nps'}\n"
)
_POLICY = parse_policy(_TEXT)
assert _POLICY.referral is not None
POLICY = PolicyInForce(
    policy=_POLICY,
    holidays_for=holidays_for(_POLICY),
    referrals=ReferralCodes(_POLICY.referral, SECRET),
)


async def _answered_and_swept(
    sessions: SessionFactory, *, score: int, themes: list[str], comment: str
) -> tuple[Case, SendEmail]:
    """A customer's answer opened by the policy, and the day-later email the sweeper plans."""
    case = await detractor_case(
        sessions, POLICY, now=NOW, source="r16", score=score, themes=themes, comment=comment
    )
    async with unit_of_work(sessions) as session:
        await sweep_due_timers(
            FollowupRepository(session), now=NOW + timedelta(days=1), policy=POLICY, limit=500
        )
    async with sessions() as session:
        rows = (
            await session.execute(
                select(followup_tables.outbox).where(
                    followup_tables.outbox.c.key == case.customer_id.encode()
                )
            )
        ).all()
    emails = [
        e.data
        for e in (
            decode(tuple((n, v.encode()) for n, v in json.loads(row.headers)), row.value)
            for row in rows
        )
        if isinstance(e.data, SendEmail)
    ]
    [email] = emails
    return case, email


async def _sent(sessions: SessionFactory, infra: Infra, email: SendEmail) -> EmailMessage:
    """`email` sent by notify through the SMTP sink, as the customer receives it."""
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"email": channel},
        clock=FrozenClock(NOW),
        concurrency=1,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    outcomes = await dispatcher.dispatch([email])
    await channel.aclose()
    assert outcomes[email.action_id].state is DispatchState.SENT
    [message] = [
        m for m in infra.mail.messages() if str(m["Message-ID"]).startswith(f"<{email.action_id}@")
    ]
    return message


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content()


async def test_a_passives_email_carries_the_page_for_their_comments_theme(
    sessions: SessionFactory, infra: Infra
) -> None:
    _, email = await _answered_and_swept(
        sessions, score=8, themes=["price", "support"], comment="Too expensive for what it does"
    )
    assert email.content is not None
    assert (email.content.theme, email.content.url) == ("price", "https://example.com/plans")
    assert email.referral is None

    text, html = _parts(await _sent(sessions, infra, email))

    assert "What each plan includes <compared>\nhttps://example.com/plans\n" in text
    assert "Every plan, side by side." in text
    # In HTML the policy's text is escaped, the link is a link.
    assert (
        '<a href="https://example.com/plans">What each plan includes &lt;compared&gt;</a>' in html
    )
    assert "help centre" not in text  # the generic list gives way to the chosen page


async def test_a_promoters_email_carries_their_referral_link(
    sessions: SessionFactory, infra: Infra
) -> None:
    case, email = await _answered_and_swept(sessions, score=10, themes=[], comment="Love it")
    code = referral_code(case.customer_id, SECRET)
    assert email.referral is not None
    assert email.referral.code == code

    text, html = _parts(await _sent(sessions, infra, email))

    assert f"https://example.com/r/{code}?src=nps (Your code: {code})" in text
    assert f'<a href="https://example.com/r/{code}?src=nps">' in html


# --- recording referrals over HTTP ----------------------------------------------------------


@pytest.fixture(scope="module")
async def followup(sessions: SessionFactory, access: Access) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="followup", description="", version="test", readiness={})
    app.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://followup"
    ) as client:
        yield client


async def _promoter_with_a_code(sessions: SessionFactory) -> tuple[Case, str]:
    case = await detractor_case(sessions, POLICY, now=NOW, source="r16", score=9, comment="Great")
    async with unit_of_work(sessions) as session:
        await sweep_due_timers(
            FollowupRepository(session), now=NOW + timedelta(days=1), policy=POLICY, limit=500
        )
    return case, referral_code(case.customer_id, SECRET)


async def test_a_referral_posted_twice_is_recorded_once_on_the_promoters_case(
    sessions: SessionFactory, infra: Infra, followup: httpx.AsyncClient
) -> None:
    case, code = await _promoter_with_a_code(sessions)
    referral_id = f"signup-{uuid.uuid4().hex[:8]}"
    body = {
        "referral_id": referral_id,
        "code": code,
        "referred_at": "2026-11-26T09:30:00+01:00",
        "reference": "acct-1234",
    }
    before = (
        await followup.get(
            "/v1/referrals/figures", params={"group_by": "day"}, headers=infra.bearer(AGENT)
        )
    ).json()["total"]

    first = await followup.post("/v1/referrals", json=body, headers=infra.bearer(AGENT))
    again = await followup.post("/v1/referrals", json=body, headers=infra.bearer(AGENT))

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert first.json() == again.json()
    assert first.json()["case_id"] == str(case.case_id)
    async with sessions() as session:
        found = await get_case(FollowupRepository(session), case.case_id)
        rows = await session.scalar(
            select(func.count())
            .select_from(followup_tables.referrals)
            .where(followup_tables.referrals.c.code == code)
        )
    assert rows == 1
    assert found is not None
    [entry] = [e for e in found.timeline if e.kind == "referral_recorded"]
    assert entry.details["referral_id"] == referral_id
    assert entry.details["reference"] == "acct-1234"
    assert entry.actor is not None
    assert entry.actor.name == AGENT
    figures = (
        await followup.get(
            "/v1/referrals/figures",
            params={"group_by": "day", "start": "2026-11-26T00:00:00Z"},
            headers=infra.bearer("analyst@example.com"),
        )
    ).json()
    assert {"period": "2026-11-26T00:00:00Z", "referrals": 1, "promoters": 1} in figures["periods"]
    total = (
        await followup.get(
            "/v1/referrals/figures", params={"group_by": "day"}, headers=infra.bearer(AGENT)
        )
    ).json()["total"]
    assert total == before + 1


async def test_an_unknown_referral_code_is_a_404_problem(
    infra: Infra, followup: httpx.AsyncClient
) -> None:
    answer = await followup.post(
        "/v1/referrals",
        json={"referral_id": "x-1", "code": "abcdefghijklmnop", "referred_at": "2026-11-26T09:30Z"},
        headers=infra.bearer(AGENT),
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["title"] == "Unknown referral code"
    assert answer.json()["errors"] == [{"field": "code", "message": "no referral link carries it"}]


async def test_a_referral_id_reused_with_other_details_is_a_409_and_a_time_needs_its_zone(
    sessions: SessionFactory, infra: Infra, followup: httpx.AsyncClient
) -> None:
    _, code = await _promoter_with_a_code(sessions)
    body = {
        "referral_id": f"r-{uuid.uuid4().hex[:8]}",
        "code": code,
        "referred_at": "2026-11-26T09:30Z",
    }
    assert (
        await followup.post("/v1/referrals", json=body, headers=infra.bearer(AGENT))
    ).status_code == 201
    reused = await followup.post(
        "/v1/referrals", json={**body, "reference": "other"}, headers=infra.bearer(AGENT)
    )
    assert reused.status_code == 409
    naive = await followup.post(
        "/v1/referrals",
        json={**body, "referral_id": "naive-1", "referred_at": "2026-11-26T09:30"},
        headers=infra.bearer(AGENT),
    )
    assert naive.status_code == 422
    assert naive.headers["content-type"].startswith("application/problem+json")
