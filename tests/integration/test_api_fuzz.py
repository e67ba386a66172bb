"""No input gets a 5xx from scoring's, followup's or notify's HTTP API, and every answer is
what the OpenAPI document says (issue #12).

schemathesis generates requests from each service's own OpenAPI document — valid ones and
ones that break it — and sends them in process over ASGI to the real API on a real
PostgreSQL. Its strings seldom hold the characters that broke these APIs, so half of the
requests also get one put into a parameter or a body field: a NUL, a line break, another
control character (or a huge number in place of a number). Followup's case routes get a real
case half the time, so the lifecycle handlers (and their writes) see the generated bodies;
notify's helpdesk routes get every body correctly signed, so the parsers behind the signature
check see them; scoring's and followup's routes get an admin's bearer token, so the requests
reach the handlers (who may call what has its own tests: test_api_access.py). ingest has its
own in tests/unit/test_ingest_fuzz.py.

Bounded for CI: a fixed number of examples per operation, about a minute in all here.
"""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce
from nps_kit.access import Access
from nps_kit.auth import AuthSettings, TokenVerifier
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory
from nps_kit.http import create_app
from nps_notify.adapters.helpdesk_webhooks import sign_jira, sign_zendesk
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.entrypoints import api as scoring_api
from tests.support.cases import detractor_case
from tests.support.fuzz import poison
from tests.support.helpdesk import helpdesk_app
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ZENDESK_SECRET = "fuzz-zendesk-secret"
JIRA_SECRET = "fuzz-jira-secret"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


class _Sessions:
    """The apps' session factory, bound to the module's database once the fixture has made
    it: the apps and their OpenAPI documents are built at import, for schemathesis to
    parametrize the tests (its fixture-built schemas do not work with this pytest)."""

    factory: SessionFactory | None = None

    def __call__(self) -> Any:
        assert self.factory is not None, "use the `bound` fixture"
        return self.factory()


SESSIONS = _Sessions()
#: The apps' token gate, trusting the session's identity provider once `bound` has run.
ACCESS = Access(TokenVerifier(AuthSettings(), http=httpx.AsyncClient()), issuer="http://idp")


class _Bearer:
    """Adds an admin's bearer token to every request that has none."""

    token = ""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k == b"authorization" for k, _ in scope["headers"]):
            token = f"Bearer {self.token}".encode()
            scope = {**scope, "headers": [*scope["headers"], (b"authorization", token)]}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def bound(database_url: str, infra: Infra) -> None:
    # Without a pool: schemathesis serves the apps on an event loop of its own, and a pooled
    # asyncpg connection belongs to the loop that opened it.
    SESSIONS.factory = session_factory(create_async_engine(database_url, poolclass=NullPool))
    # The keys are fetched here, on a loop of their own, and then served from the cache.
    verifier = TokenVerifier(infra.auth(), http=httpx.AsyncClient(timeout=5))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, verifier.start()).result()
    ACCESS.verifier = verifier
    _Bearer.token = infra.token("admin@example.com")


# --- scoring ----------------------------------------------------------------------------------


def _scoring() -> ASGIApp:
    app = create_app(
        title="npsloop scoring", description="-", version="fuzz", readiness={}, docs=True
    )
    labels = {t.id: t.label for t in load_taxonomy().themes}
    app.include_router(
        scoring_api.router(sessions=SESSIONS, timezone="UTC", labels=labels, access=ACCESS)  # type: ignore[arg-type]
    )
    return _Bearer(app)


scoring = schemathesis.openapi.from_asgi("/openapi.json", _scoring())


@scoring.parametrize()
@FUZZ
def test_scoring_answers_every_request_as_documented(case: schemathesis.Case, bound: None) -> None:
    poison(case)
    case.call_and_validate(checks=CHECKS)


# --- followup ---------------------------------------------------------------------------------

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))


@pytest.fixture(scope="module")
async def a_case(sessions: SessionFactory) -> uuid.UUID:
    """A detractor's open case, for the case routes to work on."""
    return (await detractor_case(sessions, POLICY, now=NOW, source="fuzz", comment="slow")).case_id


def _followup() -> ASGIApp:
    app = create_app(
        title="npsloop followup", description="-", version="fuzz", readiness={}, docs=True
    )
    app.include_router(
        followup_api.router(
            sessions=SESSIONS,  # type: ignore[arg-type]
            clock=FrozenClock(NOW),
            policy=POLICY,
            access=ACCESS,
        )
    )
    return _Bearer(app)


followup = schemathesis.openapi.from_asgi("/openapi.json", _followup())


@followup.parametrize()
@FUZZ
def test_followup_answers_every_request_as_documented(
    case: schemathesis.Case, bound: None, a_case: uuid.UUID
) -> None:
    generated = (case.path_parameters or {}).get("case_id")
    if isinstance(generated, str) and generated[:1] in "01234567":
        # Half of the generated ids name the real case: its handlers get the generated body.
        case.path_parameters = {**(case.path_parameters or {}), "case_id": str(a_case)}
    poison(case)
    case.call_and_validate(checks=CHECKS)


# --- notify -----------------------------------------------------------------------------------


class _SignEveryBody:
    """Signs each request's body as Zendesk and Jira do, so that the generated bodies reach
    the parsers behind the signature check (the signature check itself has its own tests)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/helpdesk/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        stamp = NOW.isoformat()
        signed = {
            **sign_zendesk(body, secret=ZENDESK_SECRET, timestamp=stamp),
            **sign_jira(body, secret=JIRA_SECRET),
        }
        headers = [
            (k, v) for k, v in scope["headers"] if not k.startswith((b"x-zendesk", b"x-hub"))
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in signed.items()]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)


def _notify() -> ASGIApp:
    app = helpdesk_app(
        SESSIONS,  # type: ignore[arg-type]
        now=NOW,
        zendesk_secrets=[ZENDESK_SECRET],
        jira_secrets=[JIRA_SECRET],
        docs=True,
    )
    return _SignEveryBody(app)


notify = schemathesis.openapi.from_asgi("/openapi.json", _notify())


@notify.parametrize()
@FUZZ
def test_notify_answers_every_request_as_documented(case: schemathesis.Case, bound: None) -> None:
    poison(case)
    case.call_and_validate(checks=CHECKS)
