"""The kit's token verifier against an identity provider served over real HTTP (discovery
document and key set), with tokens really signed: every way a token can be wrong is refused
with its reason, rotated keys are picked up, and a provider that goes away does not stop
tokens signed with cached keys."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nps_kit.auth import AuthSettings, Role, TokenError, TokenVerifier
from nps_kit.devstack import free_port
from tests.support.serve import served

AUDIENCE = "npsloop"


@dataclass
class Provider:
    """A minimal OpenID provider: a discovery document and a key set (RFC 7517), both
    served over HTTP; the signing keys are kept here to sign tokens with."""

    issuer: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    up: bool = True
    fetches: int = 0

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            if not self.up:
                return JSONResponse({"error": "down"}, status_code=503)
            return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"})

        async def jwks(_: Request) -> JSONResponse:
            self.fetches += 1
            if not self.up:
                return JSONResponse({"error": "down"}, status_code=503)
            keys = []
            for kid, private in self.keys.items():
                public = private.public_key()
                algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else None
                jwk = (
                    algorithm.to_jwk(public, as_dict=True)
                    if algorithm
                    else jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
                )
                keys.append({**jwk, "kid": kid, "use": "sig"})
            return JSONResponse({"keys": keys})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
            ]
        )

    def add_rsa(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def token(self, kid: str = "rsa-1", *, algorithm: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "u-alex",
            "email": "alex@example.com",
            "iat": now,
            "exp": now + 300,
            "roles": ["agent"],
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        algorithm = algorithm or ("RS256" if kid.startswith("rsa") else "ES256")
        return jwt.encode(payload, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    fake = Provider()
    fake.add_rsa("rsa-1")
    fake.add_ec("ec-1")
    with served(fake.app()) as url:
        fake.issuer = url
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def _verifier(provider: Provider, http: httpx.AsyncClient, **settings: Any) -> TokenVerifier:
    values = {"issuer": provider.issuer, "audience": AUDIENCE, "refresh_interval_seconds": 1}
    return TokenVerifier(AuthSettings.model_validate(values | settings), http=http)


async def test_a_valid_token_gives_the_person_and_their_roles(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    verifier = _verifier(provider, http)
    await verifier.start()
    await verifier.check()
    person = await verifier.verify(provider.token(name="Alex Doe", roles=["agent", "lead", "x"]))
    assert person.subject == "u-alex"
    assert person.actor == "alex@example.com"
    assert person.name == "Alex Doe"
    assert person.roles == {Role.AGENT, Role.LEAD}  # "x" means nothing to npsloop
    program = await verifier.verify(
        provider.token("ec-1", sub="svc-bi", email=None, client_id="bi-job", roles=["viewer"])
    )
    assert (program.actor, program.client_id, program.roles) == ("svc-bi", "bi-job", {Role.VIEWER})


async def test_roles_come_from_the_configured_claim_and_mapping(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    """Keycloak puts realm roles under realm_access.roles, with the company's own names."""
    verifier = _verifier(
        provider,
        http,
        roles_claim="realm_access.roles",
        role_map={"cs-agents": "agent", "cs-admins": "admin"},
    )
    token = provider.token(roles=None, realm_access={"roles": ["cs-admins", "offline_access"]})
    assert (await verifier.verify(token)).roles == {Role.ADMIN}


async def test_a_namespaced_claim_name_with_dots_is_read_as_a_name(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    """Auth0 puts custom claims under a URL, dots and all."""
    verifier = _verifier(provider, http, roles_claim="https://npsloop.example.com/roles")
    token = provider.token(roles=None, **{"https://npsloop.example.com/roles": ["lead"]})
    assert (await verifier.verify(token)).roles == {Role.LEAD}


def _hs256_with_the_public_key(provider: Provider) -> str:
    """The classic confusion attack: the RSA public key (which anyone can fetch) used as an
    HMAC secret. PyJWT refuses to sign with a PEM key as HMAC secret, so it is signed here."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415
    import json  # noqa: PLC0415

    public_pem = (
        provider.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def _none(provider: Provider) -> str:
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    return jwt.encode(claims, key=None, algorithm="none", headers={"kid": "rsa-1"})


def _tampered(provider: Provider) -> str:
    header, _, signature = provider.token(roles=["agent"]).split(".")
    other = provider.token(roles=["admin"]).split(".")[1]
    return f"{header}.{other}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: "not-a-jwt", "the token is not a JWT"),
        (lambda p: p.token(exp=int(time.time()) - 120), "the token has expired"),
        (lambda p: p.token(nbf=int(time.time()) + 600), "the token is not valid yet"),
        (lambda p: p.token(iss="https://evil.example.com"), "issued by another issuer"),
        (lambda p: p.token(aud="another-api"), "not meant for 'npsloop'"),
        (lambda p: p.token(sub=None), "no 'sub' claim"),
        (lambda p: p.token(exp=None), "no 'exp' claim"),
        (_none, "algorithm 'none' is not accepted"),
        (_hs256_with_the_public_key, "algorithm 'HS256' is not accepted"),
        (_tampered, "signature does not verify"),
        (lambda p: p.token("rsa-1", algorithm="RS512"), "algorithm 'RS512' is not accepted"),
    ],
    ids=[
        "garbage",
        "expired",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "no-subject",
        "no-expiry",
        "alg-none",
        "hs256-with-public-key",
        "tampered",
        "algorithm-not-allowed",
    ],
)
async def test_every_bad_token_is_refused_with_its_reason(
    provider: Provider, http: httpx.AsyncClient, make: Any, reason: str
) -> None:
    verifier = _verifier(provider, http)
    await verifier.start()
    with pytest.raises(TokenError) as refused:
        await verifier.verify(make(provider))
    assert reason in refused.value.description


async def test_a_token_signed_by_a_key_the_issuer_does_not_publish_is_refused(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    stranger = Provider(issuer=provider.issuer)
    stranger.add_rsa("rsa-9")
    verifier = _verifier(provider, http)
    await verifier.start()
    with pytest.raises(TokenError, match="no key 'rsa-9'"):
        await verifier.verify(stranger.token("rsa-9"))
    # Same kid as a published key, other key material: the signature fails.
    impostor = Provider(issuer=provider.issuer)
    impostor.add_rsa("rsa-1")
    with pytest.raises(TokenError, match="signature does not verify"):
        await verifier.verify(impostor.token("rsa-1"))


async def test_a_rotated_key_is_picked_up_by_its_kid_and_made_up_kids_do_not_flood_the_issuer(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    verifier = _verifier(provider, http, refresh_interval_seconds=1)
    await verifier.start()
    provider.add_rsa("rsa-2")  # the provider rotates
    time.sleep(1.1)  # noqa: ASYNC251 - past the refresh interval, on purpose
    assert (await verifier.verify(provider.token("rsa-2"))).subject == "u-alex"
    # Made before the clock starts: generating keys takes longer than the refresh interval
    # on a loaded machine.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    made_up = [_with_kid(key, f"made-up-{uuid.uuid4().hex[:6]}") for _ in range(20)]
    fetches = provider.fetches
    for token in made_up:
        with pytest.raises(TokenError, match="no key"):
            await verifier.verify(token)
    assert provider.fetches <= fetches + 1  # at most one fetch per refresh interval


def _with_kid(key: rsa.RSAPrivateKey, kid: str) -> str:
    return jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": kid})


async def test_an_unreachable_provider_leaves_cached_keys_working_and_says_so_when_none(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    verifier = _verifier(provider, http, max_age_seconds=60)
    await verifier.start()
    provider.up = False
    time.sleep(1.1)  # noqa: ASYNC251 - past the refresh interval
    assert (await verifier.verify(provider.token())).subject == "u-alex"
    await verifier.check()  # keys cached: ready

    nowhere = TokenVerifier(
        AuthSettings(issuer=f"http://127.0.0.1:{free_port()}", audience=AUDIENCE), http=http
    )
    await nowhere.start()  # does not raise: the service starts
    with pytest.raises(RuntimeError, match="no signing keys from the identity provider"):
        await nowhere.check()
    with pytest.raises(TokenError, match="no key 'rsa-1'"):
        await nowhere.verify(provider.token())


def test_symmetric_or_no_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="HS256, none: only asymmetric algorithms"):
        AuthSettings(algorithms=["RS256", "HS256", "none"])


async def test_a_token_answered_from_the_cache_still_expires(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    """The verifier keeps what it verified (a client sends its token with every request), but
    never past the token's `exp`."""
    verifier = _verifier(provider, http, leeway_seconds=0)
    await verifier.start()
    token = provider.token(exp=int(time.time()) + 2)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first  # answered again, from the cache
    await asyncio.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.2
    )
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(token)
