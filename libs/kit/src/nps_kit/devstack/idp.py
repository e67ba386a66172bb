"""A small OpenID Connect provider for the dev stack and the tests: real RS256 signatures,
a discovery document, a key set, the client-credentials grant for programs, and tokens for
the documented people (`make token USER=… ROLE=…`). Nothing here is used in production:
there the services trust the company's own provider (`AUTH_ISSUER`).

Built on PyJWT and cryptography (the verifier's own libraries) and Starlette; its signing key
is kept in a PEM file (`var/idp/signing-key.pem` for `make run`), so tokens printed by
`make token` verify whether or not the provider was running when they were made, and across
restarts. Its key id is the key's RFC 7638 thumbprint.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nps_kit.devstack.process import wait_for_port

AUDIENCE = "npsloop"
TOKEN_LIFETIME_SECONDS = 3600


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
        self._jwk = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}
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
            "token_endpoint": f"{self.issuer}/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "email", "name", "roles", "groups", "client_id"],
        }

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse(self.discovery())

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse({"keys": [self._jwk]})

        async def token(request: Request) -> JSONResponse:
            # application/x-www-form-urlencoded (RFC 6749 §4.4.2), read without a multipart
            # parser: the one grant here has nothing else.
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
            if form.get("grant_type") != "client_credentials":
                return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
            client_id, secret = _client_credentials(request.headers, form)
            issued = self.client_token(client_id or "", secret or "")
            if issued is None:
                return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
            return JSONResponse(
                {
                    "access_token": issued,
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                },
                headers={"Cache-Control": "no-store"},
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/token", token, methods=["POST"]),
            ]
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
