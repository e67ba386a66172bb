"""Who may call a service's HTTP API: the bearer-token gate every staff route goes through.

`Access.require(Role.AGENT)` is a FastAPI dependency that answers, before the route runs:

- 401 problem+json with `WWW-Authenticate: Bearer realm="npsloop"` when the request carries no
  token, and with `error="invalid_token"` and the reason (RFC 6750 §3) when the token is not
  one of the issuer's, has expired, is not valid yet, is meant for another audience, names an
  unknown key, uses `none` or a symmetric algorithm, or has been tampered with;
- 403 problem+json naming the role needed when the token is good but its roles fall short.

Roles rank viewer < agent < lead < admin: a role includes the rights of those below it. The
dependency is declared as an OpenID Connect security scheme, so each operation of the
OpenAPI document says it needs a token (and documents its 401 and 403 answers).
"""

from typing import Any

import httpx
from fastapi import Security
from fastapi.security import OpenIdConnect

from nps_kit.auth import AuthSettings, Principal, Role, TokenError, TokenVerifier
from nps_kit.http import Problem

#: How many rights each role has; a role includes those of lower rank.
RANK: dict[Role, int] = {Role.VIEWER: 0, Role.AGENT: 1, Role.LEAD: 2, Role.ADMIN: 3}
REALM = "npsloop"


def has_role(principal: Principal, role: Role) -> bool:
    """Whether `principal` holds `role` or one above it."""
    return any(RANK[held] >= RANK[role] for held in principal.roles)


def highest_role(principal: Principal) -> Role | None:
    return max(principal.roles, key=RANK.__getitem__, default=None)


def _unauthorized(detail: str, *, error: str | None) -> Problem:
    challenge = f'Bearer realm="{REALM}"'
    if error is not None:
        quoted = detail.replace("\\", "\\\\").replace('"', '\\"')
        challenge += f', error="{error}", error_description="{quoted}"'
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="https://npsloop.dev/problems/unauthorized",
        headers={"WWW-Authenticate": challenge},
    )


def forbidden(principal: Principal, role: Role, why: str | None = None) -> Problem:
    """403 naming what is missing: a role, or (with `why`) the case or team it is about."""
    held = highest_role(principal)
    detail = why or (
        f"This needs the role {role.value}; "
        + (f"your token's highest role is {held.value}." if held else "your token has no role.")
    )
    return Problem(
        403,
        "Forbidden",
        detail,
        type_="https://npsloop.dev/problems/forbidden",
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
        required_role=role.value,
    )


class Access:
    """One service's gate: the verifier (started with the app) and the role dependencies."""

    def __init__(
        self, verifier: TokenVerifier, *, issuer: str, http: httpx.AsyncClient | None = None
    ) -> None:
        self.verifier = verifier
        self._http = http
        self._scheme = OpenIdConnect(
            openIdConnectUrl=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
            scheme_name="openIdConnect",
            description="A bearer access token from the company's OpenID Connect provider: "
            "a person's (authorization code) or a program's (client credentials).",
            auto_error=False,
        )

    @classmethod
    def connect(cls, settings: AuthSettings) -> "Access":
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return cls(TokenVerifier(settings, http=http), issuer=settings.issuer, http=http)

    async def start(self) -> None:
        await self.verifier.start()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def check(self) -> None:
        """Readiness: the identity provider's keys are known."""
        await self.verifier.check()

    def require(self, role: Role) -> Any:
        """A dependency giving the caller's `Principal` if they hold `role` (or above)."""

        async def principal(
            authorization: str | None = Security(self._scheme),
        ) -> Principal:
            found = await self.authenticate(authorization)
            if not has_role(found, role):
                raise forbidden(found, role)
            return found

        return Security(principal)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization` header, or a 401 `Problem` saying why not."""
        if not authorization:
            raise _unauthorized(
                "This needs a bearer token (Authorization: Bearer …) from the identity provider.",
                error=None,
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "The Authorization header must be `Bearer <token>`.", error="invalid_request"
            )
        try:
            return await self.verifier.verify(token)
        except TokenError as exc:
            raise _unauthorized(exc.description, error="invalid_token") from None
