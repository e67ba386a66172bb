"""A small OpenID Connect provider for the dev stack and the tests: real RS256 signatures,
a discovery document, a key set, the client-credentials grant for programs, the authorization
code grant (PKCE) with rotating refresh tokens for the console, and tokens for the documented
people (`make token USER=… ROLE=…`). Nothing here is used in production:
there the services trust the company's own provider (`AUTH_ISSUER`).

Built on PyJWT and cryptography (the verifier's own libraries) and Starlette; its signing key
is kept in a PEM file (`var/idp/signing-key.pem` for `make run`), so tokens printed by
`make token` verify whether or not the provider was running when they were made, and across
restarts. Its key id is the key's RFC 7638 thumbprint.
"""

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from nps_kit.devstack.process import wait_for_port

AUDIENCE = "npsloop"
TOKEN_LIFETIME_SECONDS = 3600
#: How long a refresh token may wait for its one use (each use gives a new one).
REFRESH_TOKEN_LIFETIME_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class DevUser:
    email: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class DevClient:
    """A program with a client id and secret (client-credentials grant)."""

    client_id: str
    secret: str
    role: str


#: The people of the dev stack; their teams come from the follow-up policy (the shipped
#: policy's `customer-success` team has alex and sam as members and cs-lead as its lead).
DEV_USERS: tuple[DevUser, ...] = (
    DevUser("alex@example.com", "Alex Agent", "agent"),
    DevUser("sam@example.com", "Sam Agent", "agent"),
    DevUser("cs-lead@example.com", "Casey Lead", "lead"),
    DevUser("admin@example.com", "Ada Admin", "admin"),
    DevUser("analyst@example.com", "Val Viewer", "viewer"),
)
#: The programs of the dev stack (the secrets are for local use only).
DEV_CLIENTS: tuple[DevClient, ...] = (
    DevClient("bi-dashboard", "bi-dashboard-secret", "viewer"),
    DevClient("automation", "automation-secret", "admin"),
)


def subject_of(email: str) -> str:
    """A person's stable subject (as Keycloak and Entra give: an opaque id, not the email)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email.lower()}"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(pem)
    tmp.rename(path)
    return key


class DevIdentityProvider:
    """The provider's keys and the tokens it signs; `app()` serves it over HTTP."""

    def __init__(
        self,
        *,
        issuer: str,
        key_file: Path,
        users: Iterable[DevUser] = DEV_USERS,
        clients: Iterable[DevClient] = DEV_CLIENTS,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.key_file = key_file
        self._key = _load_or_create_key(key_file)
        public: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key())
        )
        thumbprint = json.dumps(
            {"e": public["e"], "kty": "RSA", "n": public["n"]}, separators=(",", ":")
        )
        self.kid = _b64(hashlib.sha256(thumbprint.encode()).digest())
        self.jwk = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}
        self.public_key = self._key.public_key()
        self.users = {user.email: user for user in users}
        self.clients = {client.client_id: client for client in clients}

    def token(
        self,
        *,
        subject: str,
        roles: Iterable[str],
        email: str | None = None,
        name: str | None = None,
        client_id: str | None = None,
        groups: Iterable[str] = (),
        lifetime: float = TOKEN_LIFETIME_SECONDS,
        audience: str = AUDIENCE,
        **claims: Any,
    ) -> str:
        """A signed access token (RS256, this provider's key) with the given claims."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
        }
        optional = {"email": email, "name": name, "client_id": client_id}
        payload.update({k: v for k, v in optional.items() if v is not None})
        if groups:
            payload["groups"] = list(groups)
        payload.update(claims)
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})

    def person_token(self, email: str, *, role: str | None = None, **claims: Any) -> str:
        """A token for a person: a documented user with their role (or `role`), or anyone
        with an email address when `role` is given."""
        if not email:
            raise ValueError("give a person's email address (USER=…)")
        user = self.users.get(email.lower())
        if role is None:
            if user is None:
                known = ", ".join(self.users)
                raise ValueError(f"{email!r} is not a dev user ({known}); give a role too")
            role = user.role
        if "@" not in email:
            raise ValueError(f"{email!r} is not an email address")
        return self.token(
            subject=subject_of(email),
            roles=[role],
            email=email.lower(),
            name=user.name if user else None,
            **claims,
        )

    def program_token(self, client_id: str) -> str:
        """A dev client's token, as the client-credentials grant gives it."""
        client = self.clients.get(client_id)
        if client is None:
            raise ValueError(f"{client_id!r} is not a dev client ({', '.join(self.clients)})")
        return self.token(subject=client_id, roles=[client.role], client_id=client_id)

    def client_token(self, client_id: str, secret: str) -> str | None:
        client = self.clients.get(client_id)
        if client is None or not secrets_equal(client.secret, secret):
            return None
        return self.program_token(client_id)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "end_session_endpoint": f"{self.issuer}/logout",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "email", "name", "roles", "groups", "client_id"],
        }

    def id_token(self, user: DevUser, *, client_id: str, nonce: str | None) -> str:
        """An ID token for a relying party (the console): audience its client id."""
        claims: dict[str, Any] = {"azp": client_id}
        if nonce:
            claims["nonce"] = nonce
        return self.token(
            subject=subject_of(user.email),
            roles=[user.role],
            email=user.email,
            name=user.name,
            audience=client_id,
            **claims,
        )

    def app(self) -> Starlette:
        return _Endpoints(self).app()


@dataclass(frozen=True, slots=True)
class _Grant:
    """An authorization code waiting for its exchange (RFC 6749 §4.1, RFC 7636)."""

    user: DevUser
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    expires: float


@dataclass(frozen=True, slots=True)
class _Refresh:
    """A refresh token's grant (RFC 6749 §6). Each use spends it and gives a new one of the
    same `family`; a spent one presented again means it was stolen or replayed, and ends the
    whole family (rotation with reuse detection, as the OAuth security BCP describes)."""

    user: DevUser
    client_id: str
    scope: str
    family: str
    expires: float


#: The relying parties of the dev stack: the console (authorization code + PKCE), with the
#: redirect URIs of this machine.
DEV_RELYING_PARTIES = {"npsloop-console": "npsloop-console-secret"}
_LOCAL_REDIRECT = re.compile(r"^http://(127\.0\.0\.1|localhost)(:\d+)?/")


class _Endpoints:
    """The provider's HTTP face: discovery, keys, the sign-in page (pick a dev person; there
    are no passwords), the token endpoint (authorization code with PKCE S256, client
    credentials, refresh token), revocation, userinfo and sign-out."""

    def __init__(self, provider: DevIdentityProvider) -> None:
        self.provider = provider
        self.grants: dict[str, _Grant] = {}
        self.refresh_tokens: dict[str, _Refresh] = {}
        #: Spent refresh token → its family, to notice a replay.
        self.spent: dict[str, str] = {}

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/revoke", self.revoke, methods=["POST"]),
                Route("/userinfo", self.userinfo),
                Route("/logout", self.logout),
            ]
        )

    async def discovery(self, _: Request) -> JSONResponse:
        return JSONResponse(self.provider.discovery())

    async def jwks(self, _: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.provider.jwk]})

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params |= await _form(request)
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in DEV_RELYING_PARTIES or not _LOCAL_REDIRECT.match(redirect_uri):
            return HTMLResponse("<p>Unknown client or redirect URI.</p>", status_code=400)
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return _redirect_error(redirect_uri, params, "invalid_request", "code with PKCE S256")
        if not params.get("code_challenge"):
            return _redirect_error(redirect_uri, params, "invalid_request", "code_challenge")
        chosen = self.provider.users.get(params.get("user", ""))
        if request.method == "GET" or chosen is None:
            return HTMLResponse(_sign_in_page(self.provider.users.values(), params))
        code = secrets.token_urlsafe(24)
        self.grants[code] = _Grant(
            user=chosen,
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            scope=params.get("scope", "openid"),
            expires=time.monotonic() + 60,
        )
        query = {"code": code} | ({"state": params["state"]} if params.get("state") else {})
        return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=303)

    async def token(self, request: Request) -> JSONResponse:
        form = await _form(request)
        client_id, secret = _client_credentials(request.headers, form)
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            issued = self.provider.client_token(client_id or "", secret or "")
            if issued is None:
                return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
            return _tokens({"access_token": issued})
        if grant_type not in ("authorization_code", "refresh_token"):
            return _oauth_error(
                400,
                "unsupported_grant_type",
                "authorization_code, refresh_token or client_credentials",
            )
        expected = DEV_RELYING_PARTIES.get(client_id or "")
        if expected is None or not secrets_equal(expected, secret or ""):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        if grant_type == "refresh_token":
            return self._refresh(client_id or "", form.get("refresh_token", ""))
        return self._exchange(client_id or "", form)

    def _exchange(self, client_id: str, form: Mapping[str, str]) -> JSONResponse:
        """RFC 6749 §4.1.3 with RFC 7636: an authorization code for tokens."""
        grant = self.grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if (
            grant is None
            or grant.expires < time.monotonic()
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or not secrets_equal(challenge, grant.code_challenge)
        ):
            return _oauth_error(
                400, "invalid_grant", "unknown, used or expired code, or PKCE failed"
            )
        return self._issue(
            grant.user, client_id=grant.client_id, scope=grant.scope, nonce=grant.nonce
        )

    def _issue(
        self,
        user: DevUser,
        *,
        client_id: str,
        scope: str,
        nonce: str | None = None,
        family: str | None = None,
    ) -> JSONResponse:
        """Access and ID tokens, and a refresh token when `offline_access` was granted."""
        granted = [s for s in scope.split() if s in self.provider.discovery()["scopes_supported"]]
        body = {
            "access_token": self.provider.person_token(user.email),
            "id_token": self.provider.id_token(user, client_id=client_id, nonce=nonce),
            "scope": " ".join(granted),
        }
        if "offline_access" in granted:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = _Refresh(
                user=user,
                client_id=client_id,
                scope=" ".join(granted),
                family=family or secrets.token_urlsafe(8),
                expires=time.monotonic() + REFRESH_TOKEN_LIFETIME_SECONDS,
            )
            body["refresh_token"] = refresh
        return _tokens(body)

    def _refresh(self, client_id: str, token: str) -> JSONResponse:
        """RFC 6749 §6: a new access token (and ID token) for a refresh token, which is spent
        and replaced by a new one (rotation)."""
        found = self.refresh_tokens.pop(token, None)
        if found is None:
            replayed = self.spent.get(token)
            if replayed is not None:
                self._end_family(replayed)
            return _oauth_error(400, "invalid_grant", "unknown, used or revoked refresh token")
        if found.client_id != client_id or found.expires < time.monotonic():
            return _oauth_error(400, "invalid_grant", "expired or another client's refresh token")
        self.spent[token] = found.family
        return self._issue(found.user, client_id=client_id, scope=found.scope, family=found.family)

    def _end_family(self, family: str) -> None:
        for token in [t for t, r in self.refresh_tokens.items() if r.family == family]:
            self.spent[token] = family
            del self.refresh_tokens[token]

    async def revoke(self, request: Request) -> Response:
        """RFC 7009: a client revokes its refresh token (and so its whole family). Unknown
        tokens are answered 200 too, as the RFC asks."""
        form = await _form(request)
        client_id, secret = _client_credentials(request.headers, form)
        expected = DEV_RELYING_PARTIES.get(client_id or "")
        if expected is None or not secrets_equal(expected, secret or ""):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        found = self.refresh_tokens.get(form.get("token", ""))
        if found is not None and found.client_id == client_id:
            self._end_family(found.family)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def userinfo(self, request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(
                token, self.provider.public_key, algorithms=["RS256"], audience=AUDIENCE
            )
        except jwt.InvalidTokenError:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        keys = ("sub", "email", "name", "roles", "groups")
        return JSONResponse({k: claims[k] for k in keys if k in claims})

    async def logout(self, request: Request) -> Response:
        """RP-initiated logout: this provider keeps no browser session, so what it ends are
        the refresh tokens it gave that person's client (the ID token hint says whose; an
        expired hint is still a hint)."""
        hint = request.query_params.get("id_token_hint", "")
        try:
            claims = jwt.decode(
                hint,
                self.provider.public_key,
                algorithms=["RS256"],
                audience=list(DEV_RELYING_PARTIES),
                issuer=self.provider.issuer,
                options={"verify_exp": False},
            )
        except jwt.InvalidTokenError:
            claims = {}
        if claims:
            ended = {
                r.family
                for r in self.refresh_tokens.values()
                if subject_of(r.user.email) == claims.get("sub") and r.client_id == claims["aud"]
            }
            for family in ended:
                self._end_family(family)
        target = request.query_params.get("post_logout_redirect_uri", "")
        if _LOCAL_REDIRECT.match(target):
            return RedirectResponse(target, status_code=303)
        return HTMLResponse("<p>Signed out.</p>")


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, read without a multipart parser."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}


def _tokens(body: dict[str, str]) -> JSONResponse:
    return JSONResponse(
        {**body, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS},
        headers={"Cache-Control": "no-store"},
    )


def _redirect_error(
    redirect_uri: str, params: Mapping[str, str], error: str, description: str
) -> RedirectResponse:
    query = {"error": error, "error_description": description}
    if params.get("state"):
        query["state"] = params["state"]
    return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=303)


def _sign_in_page(users: Iterable[DevUser], params: Mapping[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k != "user"
    )
    buttons = "".join(
        f'<li><button type="submit" name="user" value="{html.escape(u.email)}">'
        f"{html.escape(u.name)} — {html.escape(u.email)} ({html.escape(u.role)})</button></li>"
        for u in users
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Sign in — npsloop dev identity provider</title></head><body>"
        "<main><h1>Sign in</h1><p>The dev stack's identity provider: choose who you are "
        "(no password; not for production).</p>"
        f'<form method="post" action="/authorize">{hidden}<ul>{buttons}</ul></form>'
        "</main></body></html>"
    )


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _client_credentials(
    headers: Mapping[str, str], form: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """client_secret_basic (RFC 6749 §2.3.1) or client_secret_post."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return None, None
        name, _, password = decoded.partition(":")
        return name, password
    given, secret = form.get("client_id"), form.get("client_secret")
    return (
        given if isinstance(given, str) else None,
        secret if isinstance(secret, str) else None,
    )


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """RFC 6749 §5.2."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


class ServedIdentityProvider:
    """The provider served by uvicorn in a background thread of the calling process (the dev
    stack's, or the test session's), like the SMTP sink."""

    def __init__(self, *, key_file: Path, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.provider = DevIdentityProvider(issuer=f"http://{host}:{port}", key_file=key_file)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def start(self) -> None:
        config = uvicorn.Config(
            self.provider.app(), host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="dev-idp", daemon=True)
        self._thread.start()
        wait_for_port(self.port, timeout=15, what="the dev identity provider", host=self.host)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
