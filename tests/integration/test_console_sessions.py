"""The console's sign-in and session rules, against the real database and the dev identity
provider over HTTP (its authorization endpoint driven by hand, as a browser would): the
cookie holds only a random id, renewed at sign-in; forms need the session's CSRF token and
the console's own origin; an expired access token means signing in again; sign-out deletes
the session and goes to the provider's end-session endpoint."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from nps_console.adapters import tables
from nps_console.adapters.apis import Apis
from nps_console.adapters.oidc import IdentityProvider
from nps_console.adapters.sessions import SessionStore
from nps_console.config import ConsoleSettings
from nps_console.entrypoints import web
from nps_kit.access import Access
from nps_kit.clock import SystemClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.devstack import free_port
from nps_kit.http import create_app
from tests.support.infra import Infra

CONSOLE = "http://127.0.0.1:8000"
COOKIE = "npsloop_session"


@pytest.fixture(scope="module")
async def console(
    sessions: SessionFactory, access: Access, infra: Infra
) -> AsyncIterator[httpx.AsyncClient]:
    nowhere = (
        f"http://127.0.0.1:{free_port()}"  # the APIs: a form that passes the checks fails here
    )
    settings = ConsoleSettings(
        public_url=CONSOLE,
        followup_url=nowhere,
        scoring_url=nowhere,
        auth=infra.auth(),
        api_timeout_seconds=2,
    )
    apis = Apis(followup_url=nowhere, scoring_url=nowhere, timeout=2)
    app = create_app(title="console", description="", version="test", readiness={})
    app.include_router(
        web.router(
            web.Console(
                settings=settings,
                sessions=sessions,
                provider=IdentityProvider(settings),
                verifier=access.verifier,
                apis=apis,
                clock=SystemClock(),
            )
        )
    )
    try:
        yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)
    finally:
        await apis.close()


async def _sign_in(client: httpx.AsyncClient, person: str, *, next_page: str = "/cases") -> str:
    """Sign in as `person` through the provider; the signed-in session's cookie."""
    client.cookies.clear()
    started = await client.get("/sign-in", params={"next": next_page})
    assert started.status_code == 303
    authorize = urlsplit(started.headers["location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge"} <= set(params)
    async with httpx.AsyncClient() as browser:
        chosen = await browser.post(
            f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
            data={**params, "user": person},
        )
    assert chosen.status_code == 303, chosen.text
    back = urlsplit(chosen.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == (next_page if next_page.startswith("/") else "/cases")
    return done.cookies[COOKIE]


async def _csrf(sessions: SessionFactory, cookie: str) -> str:
    async with sessions() as db:
        found = await SessionStore(db).get(cookie, now=datetime.now(UTC))
    assert found is not None
    return found.csrf_token


async def test_the_cookie_holds_a_random_id_renewed_at_sign_in(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    started = await console.get("/sign-in")
    before = started.cookies[COOKIE]
    header = started.headers["set-cookie"].lower()
    assert "httponly" in header
    assert "samesite=lax" in header
    assert "secure" not in header  # http://127.0.0.1: a browser would drop a Secure cookie
    cookie = await _sign_in(console, "alex@example.com")
    assert cookie != before
    async with sessions() as db:
        rows = (await db.execute(select(tables.sessions))).mappings().all()
    assert all(row["id_hash"] != cookie for row in rows), "the cookie is stored as it is"
    mine = [r for r in rows if r["id_hash"] == hashlib.sha256(cookie.encode()).hexdigest()]
    assert [(r["email"], r["roles"]) for r in mine] == [("alex@example.com", ["agent"])]


async def test_only_a_local_page_is_returned_to_after_sign_in(
    console: httpx.AsyncClient,
) -> None:
    await _sign_in(console, "alex@example.com", next_page="https://evil.example/cases")


async def test_a_callback_with_another_sign_ins_state_is_refused(
    console: httpx.AsyncClient,
) -> None:
    console.cookies.clear()
    await console.get("/sign-in")
    answer = await console.get("/auth/callback", params={"code": "x", "state": "forged"})
    assert answer.status_code == 400
    assert "state" in answer.text
    assert COOKIE not in answer.cookies


async def test_a_form_needs_the_sessions_csrf_token_and_the_consoles_origin(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    cookie = await _sign_in(console, "alex@example.com")
    token = await _csrf(sessions, cookie)
    path = f"/cases/{uuid.uuid4()}/contact"
    form = {"channel": "phone", "outcome": "reached"}
    for origin, csrf in (
        ("https://evil.example", token),
        (CONSOLE, "not-the-token"),
        (CONSOLE, ""),
    ):
        answer = await console.post(
            path, data={**form, "csrf_token": csrf}, headers={"Origin": origin}
        )
        assert answer.status_code == 403, (origin, csrf)
        assert "did not come from the console" in answer.text
    # No Origin: the Referer must be the console's.
    refused = await console.post(
        path, data={**form, "csrf_token": token}, headers={"Referer": "https://evil.example/x"}
    )
    assert refused.status_code == 403
    # Both right: the form goes on to followup (unreachable here, and said so).
    passed = await console.post(
        path, data={**form, "csrf_token": token}, headers={"Origin": CONSOLE}
    )
    assert passed.status_code == 503
    assert "A service did not answer" in passed.text


async def test_an_expired_access_token_sends_the_person_to_sign_in_again(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    now = datetime.now(UTC)
    cookie = "an-old-session-" + uuid.uuid4().hex
    async with unit_of_work(sessions) as db:
        await SessionStore(db).add(
            cookie,
            created_at=now - timedelta(hours=2),
            expires_at=now + timedelta(hours=6),
            subject="s",
            email="alex@example.com",
            roles=["agent"],
            access_token=infra.token("alex@example.com"),
            access_token_expires_at=now - timedelta(seconds=1),
        )
    console.cookies.clear()
    console.cookies.set(COOKIE, cookie)
    answer = await console.get("/cases", params={"status": "open"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fcases%3Fstatus%3Dopen"


async def test_signing_out_deletes_the_session_and_ends_it_at_the_provider(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    cookie = await _sign_in(console, "sam@example.com")
    token = await _csrf(sessions, cookie)
    answer = await console.post(
        "/sign-out", data={"csrf_token": token}, headers={"Origin": CONSOLE}
    )
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{infra.issuer}/logout"
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == [f"{CONSOLE}/signed-out"]
    assert "id_token_hint" in query
    async with sessions() as db:
        assert await SessionStore(db).get(cookie, now=datetime.now(UTC)) is None
    console.cookies.set(COOKIE, cookie)
    again = await console.get("/cases")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/sign-in")


async def test_a_case_id_that_is_not_one_never_reaches_followup(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    """Followup is unreachable here: a 404 page (not the 503 of a call) shows nothing was asked."""
    cookie = await _sign_in(console, "alex@example.com")
    for path in ("/cases/not-a-case", "/cases/%2E%2E", "/cases/1%3B2"):
        answer = await console.get(path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert "There is no such case." in answer.text
    token = await _csrf(sessions, cookie)
    posted = await console.post(
        "/cases/not-a-case/close", data={"csrf_token": token}, headers={"Origin": CONSOLE}
    )
    assert posted.status_code == 404
