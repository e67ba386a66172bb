"""The console's sign-in and session rules, against the real database and the dev identity
provider over HTTP (its authorization endpoint driven by hand, as a browser would): the
cookie holds only a random id, renewed at sign-in; forms need the session's CSRF token and
the console's own origin; the provider's tokens are kept encrypted; an access token about to
end is refreshed (the refresh token rotated), and a refused refresh, an idle session or one
past its lifetime means signing in again; sign-out deletes the session, revokes its refresh
token and goes to the provider's end-session endpoint.

The console's clock is the real one shifted by `clock.ahead`: hours pass without a sleep,
while the tokens the provider signs stay valid for the APIs' verifier."""

import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nps_console.adapters import tables
from nps_console.adapters.apis import Apis
from nps_console.adapters.oidc import IdentityProvider
from nps_console.adapters.sessions import Session, SessionStore, TokenCipher
from nps_console.config import ConsoleSettings
from nps_console.entrypoints import web
from nps_kit.access import Access
from nps_kit.auth import AuthSettings
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.devstack import free_port
from nps_kit.devstack.idp import DEV_RELYING_PARTIES
from nps_kit.http import create_app
from tests.support.infra import Infra

CONSOLE = "http://127.0.0.1:8000"
COOKIE = "npsloop_session"
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=2)


class AheadClock:
    """The real time, `ahead` later."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture(scope="module")
def module_clock() -> AheadClock:
    return AheadClock()


@pytest.fixture
def clock(module_clock: AheadClock) -> Iterator[AheadClock]:
    module_clock.ahead = timedelta()
    yield module_clock
    module_clock.ahead = timedelta()


def _store(db: AsyncSession, infra: Infra) -> SessionStore:
    return SessionStore(db, cipher=TokenCipher([infra.session_key]), idle=IDLE)


@contextlib.asynccontextmanager
async def _console(
    sessions: SessionFactory,
    access: Access,
    infra: Infra,
    clock: AheadClock,
    *,
    issuer: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The console's pages, signing in with `issuer` (the dev provider's unless given)."""
    nowhere = (
        f"http://127.0.0.1:{free_port()}"  # the APIs: a form that passes the checks fails here
    )
    settings = ConsoleSettings(
        public_url=CONSOLE,
        followup_url=nowhere,
        scoring_url=nowhere,
        auth=AuthSettings(issuer=issuer) if issuer else infra.auth(),
        api_timeout_seconds=2,
        session_keys=infra.session_key,
        session_idle_minutes=IDLE.total_seconds() / 60,
        session_hours=LIFETIME.total_seconds() / 3600,
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
                clock=clock,
            )
        )
    )
    try:
        yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)
    finally:
        await apis.close()


@pytest.fixture(scope="module")
async def console(
    sessions: SessionFactory, access: Access, infra: Infra, module_clock: AheadClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with _console(sessions, access, infra, module_clock) as client:
        yield client


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


async def _session(sessions: SessionFactory, infra: Infra, cookie: str) -> Session:
    async with sessions() as db:
        found = await _store(db, infra).get(cookie, now=datetime.now(UTC))
    assert found is not None
    return found


async def _csrf(sessions: SessionFactory, infra: Infra, cookie: str) -> str:
    return (await _session(sessions, infra, cookie)).csrf_token


async def _work_until(
    console: httpx.AsyncClient, cookie: str, clock: AheadClock, until: datetime
) -> None:
    """A person asking for a page every 20 minutes (well inside the idle lifetime) until
    `until`; each page is answered as signed in (a 503: the APIs are unreachable here)."""
    console.cookies.set(COOKIE, cookie)
    while clock.now() + timedelta(minutes=20) < until:
        clock.ahead += timedelta(minutes=20)
        assert (await console.get("/cases")).status_code == 503, clock.ahead
    clock.ahead += until - clock.now()
    assert (await console.get("/cases")).status_code == 503, clock.ahead


def _refreshes(outcome: str) -> float:
    found = REGISTRY.get_sample_value("npsloop_console_token_refreshes_total", {"outcome": outcome})
    return found or 0.0


async def _refresh_at_provider(infra: Infra, refresh_token: str) -> httpx.Response:
    """The token endpoint's answer to a refresh token, as the console's client asks it."""
    client = "npsloop-console"
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{infra.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(client, DEV_RELYING_PARTIES[client]),
        )


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
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    cookie = await _sign_in(console, "alex@example.com")
    token = await _csrf(sessions, infra, cookie)
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
        await _store(db, infra).add(
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
    token = await _csrf(sessions, infra, cookie)
    refresh_token = (await _session(sessions, infra, cookie)).refresh_token
    assert refresh_token is not None
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
        assert await _store(db, infra).get(cookie, now=datetime.now(UTC)) is None
    refused = await _refresh_at_provider(infra, refresh_token)
    assert refused.status_code == 400, "the refresh token outlived the sign-out"
    assert refused.json()["error"] == "invalid_grant"
    console.cookies.set(COOKIE, cookie)
    again = await console.get("/cases")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/sign-in")


async def test_a_case_id_that_is_not_one_never_reaches_followup(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    """Followup is unreachable here: a 404 page (not the 503 of a call) shows nothing was asked."""
    cookie = await _sign_in(console, "alex@example.com")
    for path in ("/cases/not-a-case", "/cases/%2E%2E", "/cases/1%3B2"):
        answer = await console.get(path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert "There is no such case." in answer.text
    token = await _csrf(sessions, infra, cookie)
    posted = await console.post(
        "/cases/not-a-case/close", data={"csrf_token": token}, headers={"Origin": CONSOLE}
    )
    assert posted.status_code == 404


async def test_the_providers_tokens_are_kept_encrypted(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    cookie = await _sign_in(console, "alex@example.com")
    mine = await _session(sessions, infra, cookie)
    tokens = [mine.access_token, mine.id_token, mine.refresh_token]
    assert all(tokens), "signed in with an access, an ID and a refresh token"
    async with sessions() as db:
        row = (
            (
                await db.execute(
                    select(tables.sessions).where(tables.sessions.c.id_hash == mine.id_hash)
                )
            )
            .mappings()
            .one()
        )
    stored = " ".join(str(value) for value in row.values())
    for token in tokens:
        assert token is not None
        assert token not in stored
        # Not a part of it either (a JWT's payload, or its signature).
        assert all(part not in stored for part in token.split(".") if len(part) > 8)
    # A JSON Web Token in clear (header.payload); the ciphertexts are base64url, without dots,
    # and may well hold "eyJ" by chance (about one run in seventy did).
    assert re.search(r"eyJ[\w-]+\.eyJ", stored) is None, "a JSON Web Token in clear"
    # Another key opens none of them.
    async with sessions() as db:
        other = SessionStore(db, cipher=TokenCipher([Fernet.generate_key().decode()]), idle=IDLE)
        assert await other.get(cookie, now=datetime.now(UTC)) is None


async def test_an_access_token_about_to_end_is_refreshed_and_a_replayed_refresh_ends_the_session(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra, clock: AheadClock
) -> None:
    cookie = await _sign_in(console, "alex@example.com")
    before = await _session(sessions, infra, cookie)
    counted = {o: _refreshes(o) for o in ("refreshed", "refused")}
    assert before.access_token_expires_at is not None
    assert before.refresh_token is not None
    # Until 30 s before the access token ends (the console refreshes 60 s before).
    await _work_until(
        console, cookie, clock, before.access_token_expires_at - timedelta(seconds=30)
    )
    after = await _session(sessions, infra, cookie)
    assert after.access_token != before.access_token
    assert after.access_token_expires_at is not None
    assert after.access_token_expires_at > before.access_token_expires_at
    assert after.refresh_token not in (None, before.refresh_token), "not rotated"
    assert _refreshes("refreshed") == counted["refreshed"] + 1
    # The spent refresh token, presented again, is a replay: the provider refuses it and
    # ends the rotation it belongs to, so the console's own refresh fails next time.
    replayed = await _refresh_at_provider(infra, before.refresh_token)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    # The new access token holds until it, too, is about to end.
    await _work_until(console, cookie, clock, after.access_token_expires_at - timedelta(seconds=90))
    clock.ahead += timedelta(seconds=60)
    bounced = await console.get("/dashboard")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/sign-in?next=%2Fdashboard"
    async with sessions() as db:
        rows = await db.execute(
            select(tables.sessions.c.id_hash).where(tables.sessions.c.id_hash == after.id_hash)
        )
        assert rows.first() is None, "the session outlived a refused refresh"
    assert _refreshes("refused") == counted["refused"] + 1


async def test_a_session_ends_when_idle_and_at_its_lifetime_and_is_purged(
    console: httpx.AsyncClient, sessions: SessionFactory, infra: Infra, clock: AheadClock
) -> None:
    idle = await _sign_in(console, "sam@example.com")
    busy = await _sign_in(console, "alex@example.com")
    # Alex works on, refreshed on the way; Sam asks for no page.
    await _work_until(console, busy, clock, datetime.now(UTC) + LIFETIME - timedelta(minutes=1))
    console.cookies.set(COOKIE, idle)
    assert (await console.get("/cases")).status_code == 303, "idle for over 30 minutes"
    clock.ahead = LIFETIME + timedelta(seconds=1)
    console.cookies.set(COOKIE, busy)
    answer = await console.get("/cases")
    assert answer.status_code == 303, "past the session's lifetime"
    hashes = [hashlib.sha256(c.encode()).hexdigest() for c in (idle, busy)]
    async with unit_of_work(sessions) as db:
        assert await _store(db, infra).remove_expired(clock.now()) >= 2
    async with sessions() as db:
        left = await db.execute(
            select(tables.sessions.c.id_hash).where(tables.sessions.c.id_hash.in_(hashes))
        )
        assert left.all() == []


async def test_a_provider_that_does_not_answer_ends_the_session_only_once_its_token_has_ended(
    sessions: SessionFactory, access: Access, infra: Infra
) -> None:
    clock = AheadClock()
    gone = f"http://127.0.0.1:{free_port()}"
    cookie = "a-session-" + uuid.uuid4().hex
    now = datetime.now(UTC)
    async with unit_of_work(sessions) as db:
        await _store(db, infra).add(
            cookie,
            created_at=now,
            expires_at=now + LIFETIME,
            subject="s",
            email="alex@example.com",
            roles=["agent"],
            access_token=infra.token("alex@example.com"),
            access_token_expires_at=now + timedelta(seconds=50),
            refresh_token="a-refresh-token",
        )
    async with _console(sessions, access, infra, clock, issuer=gone) as console:
        console.cookies.set(COOKIE, cookie)
        kept = await console.get("/cases")
        assert kept.status_code == 503, "signed out while the access token still held"
        clock.ahead = timedelta(seconds=51)
        ended = await console.get("/cases")
        assert ended.status_code == 303
        assert ended.headers["location"].startswith("/sign-in")
    async with sessions() as db:
        assert await _store(db, infra).get(cookie, now=datetime.now(UTC)) is None
