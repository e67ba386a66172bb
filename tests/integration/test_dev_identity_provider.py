"""The dev stack's identity provider speaks OpenID Connect as a relying party (the console)
expects: authorization code with PKCE (S256), an ID token with the nonce, an access token the
services accept, userinfo; and refuses a wrong verifier, a reused code, a foreign redirect."""

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from nps_kit.auth import AuthSettings, Role, TokenVerifier
from nps_kit.devstack.idp import DEV_RELYING_PARTIES, subject_of
from tests.support.infra import Infra

CLIENT = "npsloop-console"
SECRET = DEV_RELYING_PARTIES[CLIENT]
REDIRECT = "http://127.0.0.1:8000/auth/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def _sign_in(
    http: httpx.AsyncClient,
    infra: Infra,
    *,
    user: str,
    challenge: str,
    nonce: str = "n-1",
    scope: str = "openid email profile",
) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s-1",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = await http.get(f"{infra.issuer}/authorize", params=params)
    assert page.status_code == 200
    assert user in page.text  # the people to choose from
    chosen = await http.post(f"{infra.issuer}/authorize", data={**params, "user": user})
    assert chosen.status_code == 303
    location = urlsplit(chosen.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-1"]
    return query["code"][0]


async def _exchange(
    http: httpx.AsyncClient, infra: Infra, code: str, verifier: str
) -> httpx.Response:
    """The relying party's back-channel call: the code and its PKCE verifier for tokens."""
    return await http.post(
        f"{infra.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(CLIENT, SECRET),
    )


async def test_authorization_code_with_pkce_gives_tokens_the_services_accept(
    http: httpx.AsyncClient, infra: Infra
) -> None:
    discovery = (await http.get(f"{infra.issuer}/.well-known/openid-configuration")).json()
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    verifier, challenge = _pkce()
    code = await _sign_in(http, infra, user="cs-lead@example.com", challenge=challenge)
    answer = await _exchange(http, infra, code, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    identity = jwt.decode(
        tokens["id_token"],
        jwt.PyJWK((await http.get(discovery["jwks_uri"])).json()["keys"][0]).key,
        algorithms=["RS256"],
        audience=CLIENT,
        issuer=infra.issuer,
    )
    assert (identity["nonce"], identity["email"]) == ("n-1", "cs-lead@example.com")
    verifier_ = TokenVerifier(AuthSettings(issuer=infra.issuer), http=http)
    await verifier_.start()
    person = await verifier_.verify(tokens["access_token"])
    assert (person.subject, person.roles) == (subject_of("cs-lead@example.com"), {Role.LEAD})
    userinfo = await http.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert userinfo.json()["email"] == "cs-lead@example.com"
    # A code is good once.
    again = await _exchange(http, infra, code, verifier)
    assert again.json()["error"] == "invalid_grant"


async def test_a_wrong_verifier_a_wrong_secret_or_a_foreign_redirect_is_refused(
    http: httpx.AsyncClient, infra: Infra
) -> None:
    _, challenge = _pkce()
    code = await _sign_in(http, infra, user="alex@example.com", challenge=challenge)
    stolen = await http.post(
        f"{infra.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": _pkce()[0],  # not the one whose challenge was sent
        },
        auth=(CLIENT, SECRET),
    )
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    wrong = await http.post(
        f"{infra.issuer}/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT},
        auth=(CLIENT, "guess"),
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    foreign = await http.get(
        f"{infra.issuer}/authorize",
        params={"client_id": CLIENT, "redirect_uri": "https://evil.example/cb"},
    )
    assert foreign.status_code == 400


async def _refresh(
    http: httpx.AsyncClient, infra: Infra, token: str, *, client: tuple[str, str] = (CLIENT, SECRET)
) -> httpx.Response:
    return await http.post(
        f"{infra.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=client,
    )


async def test_refresh_tokens_only_with_offline_access_each_good_once_and_a_replay_ends_them(
    http: httpx.AsyncClient, infra: Infra
) -> None:
    discovery = (await http.get(f"{infra.issuer}/.well-known/openid-configuration")).json()
    assert "refresh_token" in discovery["grant_types_supported"]
    assert "offline_access" in discovery["scopes_supported"]
    verifier, challenge = _pkce()
    code = await _sign_in(http, infra, user="alex@example.com", challenge=challenge)
    assert "refresh_token" not in (await _exchange(http, infra, code, verifier)).json()

    code = await _sign_in(
        http, infra, user="alex@example.com", challenge=challenge, scope="openid offline_access"
    )
    first = (await _exchange(http, infra, code, verifier)).json()
    assert first["scope"] == "openid offline_access"
    refused = await _refresh(http, infra, first["refresh_token"], client=("bi-dashboard", "x"))
    assert refused.status_code == 401, "another client's secret"
    renewed = await _refresh(http, infra, first["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()
    assert second["refresh_token"] != first["refresh_token"], "rotated"
    verifier_ = TokenVerifier(AuthSettings(issuer=infra.issuer), http=http)
    await verifier_.start()
    person = await verifier_.verify(second["access_token"])
    assert person.subject == subject_of("alex@example.com")
    # The spent one again: a replay. Refused, and the one it was exchanged for ends too.
    replay = await _refresh(http, infra, first["refresh_token"])
    assert replay.json()["error"] == "invalid_grant"
    assert (await _refresh(http, infra, second["refresh_token"])).json()["error"] == (
        "invalid_grant"
    )


async def test_a_revoked_refresh_token_is_refused(http: httpx.AsyncClient, infra: Infra) -> None:
    verifier, challenge = _pkce()
    code = await _sign_in(
        http, infra, user="sam@example.com", challenge=challenge, scope="openid offline_access"
    )
    token = (await _exchange(http, infra, code, verifier)).json()["refresh_token"]
    revoked = await http.post(
        f"{infra.issuer}/revoke", data={"token": token}, auth=(CLIENT, SECRET)
    )
    assert revoked.status_code == 200
    assert (await _refresh(http, infra, token)).json()["error"] == "invalid_grant"


async def test_signing_out_at_the_provider_ends_that_persons_refresh_tokens(
    http: httpx.AsyncClient, infra: Infra
) -> None:
    verifier, challenge = _pkce()
    tokens = {}
    for person in ("alex@example.com", "sam@example.com"):
        code = await _sign_in(
            http, infra, user=person, challenge=challenge, scope="openid offline_access"
        )
        tokens[person] = (await _exchange(http, infra, code, verifier)).json()
    back = "http://127.0.0.1:8000/signed-out"
    answer = await http.get(
        f"{infra.issuer}/logout",
        params={
            "id_token_hint": tokens["alex@example.com"]["id_token"],
            "post_logout_redirect_uri": back,
        },
    )
    assert (answer.status_code, answer.headers["location"]) == (303, back)
    ended = await _refresh(http, infra, tokens["alex@example.com"]["refresh_token"])
    assert ended.json()["error"] == "invalid_grant"
    kept = await _refresh(http, infra, tokens["sam@example.com"]["refresh_token"])
    assert kept.status_code == 200, "another person's sign-in ended too"
