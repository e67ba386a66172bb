"""The console's impact page against followup served over real HTTP on the real database: a
held-out passive and a messaged one who both answered again show in their groups, each
flagged as too few customers to prove anything, and the messages against the holdout; a
period outside the page's list is a 422 page saying what is accepted."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from nps_console.adapters.apis import Apis
from nps_console.adapters.oidc import IdentityProvider
from nps_console.config import ConsoleSettings
from nps_console.entrypoints import impact_page, web
from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    Customer,
    ResponseScored,
    Segment,
)
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.holdout import is_held_out
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce, apply_policy, record_action_results
from nps_kit.access import Access
from nps_kit.clock import FrozenClock, SystemClock
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_kit.devstack import free_port
from nps_kit.http import create_app
from tests.integration.test_console_case_page import _sign_in
from tests.support.infra import Infra
from tests.support.serve import served

CONSOLE = "http://127.0.0.1:8000"
NOW = datetime.now(UTC)
FIRST, AGAIN = NOW - timedelta(days=40), NOW - timedelta(days=5)
_POLICY = parse_policy(
    default_policy_text().replace(
        "        template: passive_education\n        after: 1 day\n",
        "        template: passive_education\n    holdout: 10%\n",
    )
)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
RUN = uuid.uuid4().hex[:6]
CANDIDATES = [f"page-{RUN}-{i}" for i in range(200)]
HELD = next(c for c in CANDIDATES if is_held_out("passive", c, Decimal(10)))
MESSAGED = next(c for c in CANDIDATES if not is_held_out("passive", c, Decimal(10)))


def _answer(customer: str, segment: Segment, at: datetime) -> ResponseScored:
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="relationship",
        customer=Customer(id=customer, email=f"{customer}@example.com"),
        score=7 if segment is Segment.PASSIVE else 10,
        segment=segment,
        comment=None,
        responded_at=at,
        scored_at=at,
        received_event_id=uuid.uuid4(),
    )


@pytest.fixture(scope="module")
async def answered(sessions: SessionFactory) -> None:
    """Both passives answered 40 days ago (the messaged one's education email reported sent),
    and as promoters 5 days ago."""
    async with unit_of_work(sessions) as session:
        applied = await apply_policy(
            FollowupRepository(session),
            [_answer(HELD, Segment.PASSIVE, FIRST), _answer(MESSAGED, Segment.PASSIVE, FIRST)],
            now=FIRST,
            policy=POLICY,
        )
    [case] = applied.opened
    [email] = case.actions
    sent = ActionResultReported(
        action_id=email.action_id,
        case_id=case.case_id,
        customer_id=MESSAGED,
        channel=Channel.EMAIL,
        status=ActionStatus.SENT,
        provider_message_id="<m@x>",
        occurred_at=FIRST + timedelta(minutes=1),
    )
    async with unit_of_work(sessions) as session:
        await record_action_results(FollowupRepository(session), [sent], now=sent.occurred_at)
    async with unit_of_work(sessions) as session:
        await apply_policy(
            FollowupRepository(session),
            [_answer(c, Segment.PROMOTER, AGAIN) for c in (HELD, MESSAGED)],
            now=AGAIN,
            policy=POLICY,
        )


@pytest.fixture(scope="module")
async def console(
    sessions: SessionFactory, access: Access, infra: Infra, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    # followup runs in uvicorn's own thread and event loop: it needs an engine of its own.
    engine = create_async_engine(database_url)
    followup = create_app(title="followup", description="", version="test", readiness={})
    followup.include_router(
        followup_api.router(
            sessions=session_factory(engine), clock=FrozenClock(NOW), policy=POLICY, access=access
        )
    )
    nowhere = f"http://127.0.0.1:{free_port()}"

    with served(followup) as followup_url:
        # followup answers from a thread of this process: a short timeout would turn a slow
        # query on a busy machine into a 503 the test is not about.
        settings = ConsoleSettings(
            public_url=CONSOLE,
            followup_url=followup_url,
            scoring_url=nowhere,
            auth=infra.auth(),
            api_timeout_seconds=15,
            session_keys=infra.session_key,
        )
        apis = Apis(followup_url=followup_url, scoring_url=nowhere, timeout=15)
        app = create_app(title="console", description="", version="test", readiness={})
        console = web.Console(
            settings=settings,
            sessions=sessions,
            provider=IdentityProvider(settings),
            verifier=access.verifier,
            apis=apis,
            clock=SystemClock(),
        )
        app.include_router(web.router(console))
        app.include_router(impact_page.router(console))
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=CONSOLE
            ) as client:
                await _sign_in(client, "analyst@example.com")  # a viewer: figures only
                yield client
        finally:
            await apis.close()
    await engine.dispose()


async def test_the_impact_page_shows_each_group_and_never_a_small_one_as_proof(
    answered: None, console: httpx.AsyncClient
) -> None:
    page = await console.get("/impact", params={"days": "90", "survey": "relationship"})

    assert page.status_code == 200, page.text
    for done in ("automated_message_only", "held_out"):
        assert f'data-segment="passive" data-done="{done}" data-conclusive="no"' in page.text
    assert page.text.count("too few customers: 1, fewer than 30") == 3  # two groups, the effect
    assert 'id="impact-holdout"' in page.text
    assert "+100.0" in page.text  # each went from passive to promoter
    assert '<a href="/impact">Impact</a>' in page.text


async def test_a_period_outside_the_list_is_a_422_page_saying_why(
    console: httpx.AsyncClient,
) -> None:
    page = await console.get("/impact", params={"days": "14"})
    assert page.status_code == 422
    assert "The period is one of 90, 180, 365 days." in page.text
