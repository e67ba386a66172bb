"""Bearer access tokens from the company's OpenID Connect provider, verified once, here.

People sign in with the identity provider (Keycloak, Okta, Entra ID, Google, Auth0…) and
programs use its client-credentials grant; either way an HTTP API of npsloop receives a JWT
access token, and `TokenVerifier.verify` turns it into a `Principal` or refuses it with a
`TokenError` whose `description` goes into RFC 6750's `WWW-Authenticate` header.

What is checked: the signature, against the issuer's JSON Web Key Set (found through
`<issuer>/.well-known/openid-configuration`, cached, fetched again when a token names a key
id the cache lacks, at most every `refresh_interval` seconds, so a rotated key is picked up
and a flood of made-up key ids cannot hammer the provider); the algorithm, from an
allow-list of asymmetric ones (never `none`, never HS256: a public key used as an HMAC secret
would let anyone sign); `iss`; `aud`; `exp` and `nbf` with a small leeway. Which claim holds
the roles and what its values mean in npsloop is configuration, since Keycloak's realm roles,
Okta's groups and Entra's app roles all differ.

The provider being unreachable never takes a service down: keys already cached keep
working; with none cached every token is refused (401) and `check()` (readiness) says why.
"""

import asyncio
import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import jwt
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.logging import get_logger
from nps_kit.redact import safe_error

log = get_logger(__name__)

#: How long a verified token's answer is kept at most, and how many are kept.
VERIFIED_FOR = 60.0
VERIFIED_MAX = 10_000

#: Asymmetric signature algorithms a token may use (RFC 7518, RFC 8037).
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class Role(StrEnum):
    """npsloop's roles, from least to most rights."""

    VIEWER = "viewer"  # figures and themes, no customer PII
    AGENT = "agent"  # the cases they own and their team's queue
    LEAD = "lead"  # a team's cases: assign, reassign, close; the team's figures
    ADMIN = "admin"  # policy, do-not-contact, dead letters, erasure; every team


class AuthSettings(BaseSettings):
    """`AUTH_ISSUER` (the provider's issuer URL), `AUTH_AUDIENCE`, `AUTH_ROLES_CLAIM` (a dotted
    path: `roles`, `groups`, `realm_access.roles`), `AUTH_ROLE_MAP` (JSON: claim value → npsloop
    role; npsloop's own role names are understood without it)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    issuer: str = "http://127.0.0.1:8010"
    audience: str = "npsloop"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"])
    leeway_seconds: float = Field(default=30, ge=0, le=300)
    roles_claim: str = "roles"
    role_map: dict[str, Role] = Field(default_factory=dict)
    #: The shortest wait between two fetches of the key set (a token with an unknown key id
    #: triggers one).
    refresh_interval_seconds: float = Field(default=30, ge=1)
    #: Keys are fetched again this often anyway, so that a removed key stops working.
    max_age_seconds: float = Field(default=3600, ge=60)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = sorted(set(value) - ASYMMETRIC)
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: only asymmetric algorithms are allowed "
                f"({', '.join(sorted(ASYMMETRIC))})"
            )
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a person (`sub`, with a name or an email) or a program (a client of
    the provider, client-credentials grant)."""

    subject: str
    roles: frozenset[Role]
    name: str | None = None
    email: str | None = None
    client_id: str | None = None
    groups: frozenset[str] = frozenset()

    @property
    def is_program(self) -> bool:
        """A client-credentials token: a client id and no person's name or email."""
        return self.client_id is not None and self.email is None and self.name is None

    @property
    def actor(self) -> str:
        """What a timeline entry and an event say did it."""
        return self.email or self.name or self.subject


class TokenError(Exception):
    """A token refused: `description` says why (it goes into `WWW-Authenticate`)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class TokenVerifier:
    def __init__(self, settings: AuthSettings, *, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_error: str | None = None
        self._refreshing = asyncio.Lock()
        #: token → (its principal, until when the answer stands: epoch seconds)
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def start(self) -> None:
        """Fetch the key set once; a provider that does not answer is logged, not fatal."""
        await self._refresh(force=True)

    async def check(self) -> None:
        """Readiness: raise while no key is known (trying the provider again first, at most
        every `refresh_interval` seconds, so that readiness comes back by itself)."""
        if not self._keys:
            await self._refresh(force=False)
        if not self._keys:
            raise RuntimeError(
                f"no signing keys from the identity provider {self._settings.issuer} yet"
                + (f": {self._last_error}" if self._last_error else "")
            )

    async def verify(self, token: str) -> Principal:
        """The token's principal, or `TokenError` saying why not. A token verified before is
        answered from a small cache until it expires (at most `VERIFIED_FOR` seconds, and
        never past a change of the key set): a person's client sends the same token with
        every request for its whole life, and checking an RS256 signature with PyJWT costs
        ~0.2 ms of CPU (docs/performance.md)."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, until = cached
            if time.time() < until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, min(expires, time.time() + VERIFIED_FOR))
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        settings = self._settings
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in settings.algorithms:
            raise TokenError(f"algorithm {algorithm!r} is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(f"the token is not meant for {settings.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("the token was issued by another issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token has no {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("the token's signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"the token is invalid: {type(exc).__name__}") from exc
        return self._principal(claims), float(claims["exp"])

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        values = _claim(claims, self._settings.roles_claim)
        names = [values] if isinstance(values, str) else list(values or [])
        roles = frozenset(
            role
            for value in names
            if isinstance(value, str)
            and (role := self._settings.role_map.get(value) or _own_role(value)) is not None
        )
        groups = claims.get("groups")
        return Principal(
            subject=str(claims["sub"]),
            roles=roles,
            name=_text(claims.get("name")),
            email=_text(claims.get("email")),
            client_id=_text(claims.get("client_id") or claims.get("azp")),
            groups=frozenset(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else frozenset(),
        )

    async def _key(self, kid: object) -> jwt.PyJWK:
        if not isinstance(kid, str) or not kid:
            raise TokenError("the token names no key (kid)")
        stale = (
            self._fetched_at is None
            or time.monotonic() - self._fetched_at > self._settings.max_age_seconds
        )
        if kid not in self._keys or stale:
            await self._refresh(force=stale)
        key = self._keys.get(kid)
        if key is None:
            raise TokenError(f"no key {kid!r} in the issuer's key set")
        return key

    async def _refresh(self, *, force: bool) -> None:
        async with self._refreshing:
            recently = (
                self._fetched_at is not None
                and time.monotonic() - self._fetched_at < self._settings.refresh_interval_seconds
            )
            if recently and not force:
                return
            try:
                self._keys = await self._fetch_keys()
            except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
                self._last_error = safe_error(exc)
                log.warning(
                    "auth.keys_unavailable",
                    issuer=self._settings.issuer,
                    error=self._last_error,
                    cached=len(self._keys),
                )
            else:
                self._verified.clear()  # a key may have gone: verify every token again
                self._last_error = None
                log.info("auth.keys_fetched", issuer=self._settings.issuer, keys=len(self._keys))
            # A failed fetch also counts: the next try waits its turn.
            self._fetched_at = time.monotonic()

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        issuer = self._settings.issuer.rstrip("/")
        discovery = await self._http.get(f"{issuer}/.well-known/openid-configuration")
        discovery.raise_for_status()
        jwks_uri = discovery.json()["jwks_uri"]
        answer = await self._http.get(jwks_uri)
        answer.raise_for_status()
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in answer.json().get("keys", []):
            kid = jwk.get("kid")
            if not kid or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                log.warning("auth.key_skipped", kid=kid, kty=jwk.get("kty"))
        return keys


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to choose the key and algorithm: `jwt.decode` then checks
    the whole token again, signature included. (PyJWT's own `get_unverified_header` validates
    every segment character by character in Python, which doubled the cost of a check.)"""
    segment, dot, _ = token.partition(".")
    if not dot or len(segment) > 2048:
        raise TokenError("the token is not a JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenError("the token is not a JWT") from exc
    if not isinstance(header, dict):
        raise TokenError("the token is not a JWT")
    return header


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named `path`, or (when there is none of that name) the one its dots lead to:
    Auth0's namespaced `https://example.com/roles` is a name, Keycloak's `realm_access.roles`
    a path."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _own_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
