"""Signing people in with the company's OpenID Connect provider, through Authlib: the
authorization code flow with PKCE (S256), a state and a nonce; the code exchanged for tokens
with the console's client secret; the ID token checked (signature against the provider's
keys, issuer, audience, expiry, nonce); RP-initiated sign-out."""

import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError

from nps_console.config import ConsoleSettings


class SignInFailed(Exception):  # noqa: N818 - named for what it is
    """The provider refused, or what it sent back does not check out."""


@dataclass(frozen=True, slots=True)
class Started:
    """Where to send the browser, and what to keep until it comes back."""

    url: str
    state: str
    code_verifier: str
    nonce: str


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    #: Epoch seconds, from the token response's `expires_in`.
    expires_at: float | None
    id_token: str
    claims: dict[str, Any]


class IdentityProvider:
    def __init__(self, settings: ConsoleSettings) -> None:
        self._settings = settings
        oauth = OAuth()
        oauth.register(
            "company",
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            server_metadata_url=(
                f"{settings.auth.issuer.rstrip('/')}/.well-known/openid-configuration"
            ),
            client_kwargs={
                "scope": settings.scopes,
                "code_challenge_method": "S256",
                "timeout": settings.api_timeout_seconds,
            },
        )
        self._client: Any = oauth.create_client("company")

    @property
    def redirect_uri(self) -> str:
        return f"{self._settings.public_url}/auth/callback"

    async def start(self) -> Started:
        try:
            found = await self._client.create_authorization_url(self.redirect_uri)
        except Exception as exc:
            raise SignInFailed(
                f"the identity provider did not answer ({type(exc).__name__})"
            ) from exc
        return Started(
            url=found["url"],
            state=found["state"],
            code_verifier=found["code_verifier"],
            nonce=found["nonce"],
        )

    async def finish(self, *, code: str, code_verifier: str, nonce: str) -> Tokens:
        try:
            token = await self._client.fetch_access_token(
                redirect_uri=self.redirect_uri, code=code, code_verifier=code_verifier
            )
            claims = await self._client.parse_id_token(token, nonce=nonce)
        except OAuthError as exc:
            raise SignInFailed(exc.description or exc.error or "refused") from exc
        except Exception as exc:
            raise SignInFailed(f"the answer did not check out ({type(exc).__name__})") from exc
        if claims is None or "access_token" not in token:
            raise SignInFailed("the identity provider sent no ID token or no access token")
        expires_at = token.get("expires_at")
        if expires_at is None and token.get("expires_in") is not None:
            expires_at = time.time() + float(token["expires_in"])
        return Tokens(
            access_token=token["access_token"],
            expires_at=None if expires_at is None else float(expires_at),
            id_token=token["id_token"],
            claims=dict(claims),
        )

    async def sign_out_url(self, *, id_token: str | None) -> str:
        """The provider's end_session_endpoint, back to the console's signed-out page."""
        found = await self._client.create_logout_url(
            post_logout_redirect_uri=f"{self._settings.public_url}/signed-out",
            id_token_hint=id_token,
        )
        return str(found["url"])
