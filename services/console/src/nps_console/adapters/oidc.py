"""Signing people in with the company's OpenID Connect provider, through Authlib: the
authorization code flow with PKCE (S256), a state and a nonce; the code exchanged for tokens
with the console's client secret; the ID token checked (signature against the provider's
keys, issuer, audience, expiry, nonce); refresh tokens (RFC 6749 §6), asked for with
`offline_access` where the provider lists that scope; revocation (RFC 7009) and RP-initiated
sign-out."""

import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError

from nps_console.config import ConsoleSettings
from nps_kit.logging import get_logger

log = get_logger(__name__)


class SignInFailed(Exception):  # noqa: N818 - named for what it is
    """The provider refused, or what it sent back does not check out."""


class RefreshRefused(SignInFailed):
    """The provider answered a refresh with an error (RFC 6749 §5.2: the refresh token is
    revoked, expired or spent), as opposed to not answering at all."""


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
    #: Seconds the access token lives, from the token response's `expires_in`.
    expires_in: float | None
    #: None when the provider gives none (or, on a refresh, keeps the one it had).
    id_token: str | None
    claims: dict[str, Any]
    refresh_token: str | None = None


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

    async def _metadata(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._client.load_server_metadata()
        return found

    async def _scope(self) -> str:
        """The configured scopes, and `offline_access` if the provider lists it (its refresh
        tokens keep a person signed in past the access token's hour)."""
        scopes = self._settings.scopes.split()
        if "offline_access" in (await self._metadata()).get("scopes_supported", ()):
            scopes += [] if "offline_access" in scopes else ["offline_access"]
        return " ".join(scopes)

    async def start(self) -> Started:
        try:
            found = await self._client.create_authorization_url(
                self.redirect_uri, scope=await self._scope()
            )
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
        return _tokens(token, claims=dict(claims))

    async def refresh(self, refresh_token: str) -> Tokens:
        """New tokens for a refresh token; the provider may rotate it (then the new one is in
        the answer, and the old one is spent)."""
        try:
            metadata = await self._metadata()
            async with self._client._get_oauth_client(**metadata) as client:
                token = await client.refresh_token(
                    metadata["token_endpoint"], refresh_token=refresh_token
                )
        except OAuthError as exc:
            raise RefreshRefused(exc.description or exc.error or "refused") from exc
        except Exception as exc:
            raise SignInFailed(f"the refresh did not succeed ({type(exc).__name__})") from exc
        if "access_token" not in token:
            raise SignInFailed("the identity provider sent no access token")
        return _tokens(token, claims={})

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token where the provider has a revocation endpoint (RFC 7009).
        False when it has none, or did not answer (sign-out goes on: the session is gone)."""
        try:
            metadata = await self._metadata()
            endpoint = metadata.get("revocation_endpoint")
            if not endpoint:
                return False
            async with self._client._get_oauth_client(**metadata) as client:
                answer = await client.revoke_token(
                    endpoint,
                    token=refresh_token,
                    token_type_hint="refresh_token",  # noqa: S106 - a hint, not a secret
                )
        except Exception as exc:
            log.warning("console.revoke_failed", error=type(exc).__name__)
            return False
        return bool(answer.status_code == 200)

    async def sign_out_url(self, *, id_token: str | None) -> str:
        """The provider's end_session_endpoint, back to the console's signed-out page (the
        console's own signed-out page when the provider has none)."""
        signed_out = f"{self._settings.public_url}/signed-out"
        try:
            if not (await self._metadata()).get("end_session_endpoint"):
                return signed_out
            found = await self._client.create_logout_url(
                post_logout_redirect_uri=signed_out, id_token_hint=id_token
            )
        except Exception as exc:
            log.warning("console.end_session_unknown", error=type(exc).__name__)
            return signed_out
        return str(found["url"])


def _tokens(token: dict[str, Any], *, claims: dict[str, Any]) -> Tokens:
    expires_in = token.get("expires_in")
    if expires_in is None and token.get("expires_at") is not None:
        expires_in = float(token["expires_at"]) - time.time()
    return Tokens(
        access_token=token["access_token"],
        expires_in=None if expires_in is None else float(expires_in),
        id_token=token.get("id_token"),
        claims=claims,
        refresh_token=token.get("refresh_token"),
    )
