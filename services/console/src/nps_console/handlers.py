"""The console's use cases: signing in and out. Working a case is the APIs' business; the
console only asks them, with the person's token."""

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from nps_console.adapters.oidc import IdentityProvider, RefreshRefused, SignInFailed
from nps_console.adapters.sessions import Session, SessionStore, new_id
from nps_console.metrics import TOKEN_REFRESHES
from nps_kit.auth import Principal, TokenError, TokenVerifier
from nps_kit.logging import get_logger

log = get_logger(__name__)

#: How long a browser has to come back from the provider's sign-in page.
SIGN_IN_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SignIn:
    """A new session id (the cookie's value) and where the browser goes next."""

    session_id: str
    location: str


def safe_return_to(path: str | None) -> str:
    """A page of the console to come back to: a local path only (no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/cases"
    return path


async def begin_sign_in(
    store: SessionStore, provider: IdentityProvider, *, return_to: str | None, now: datetime
) -> SignIn:
    """A short-lived session holding the state, PKCE verifier and nonce, and the provider's
    sign-in URL."""
    started = await provider.start()
    session_id = new_id()
    await store.add(
        session_id,
        created_at=now,
        expires_at=now + SIGN_IN_WINDOW,
        pending={
            "state": started.state,
            "code_verifier": started.code_verifier,
            "nonce": started.nonce,
            "return_to": safe_return_to(return_to),
        },
    )
    return SignIn(session_id=session_id, location=started.url)


async def finish_sign_in(
    store: SessionStore,
    provider: IdentityProvider,
    verifier: TokenVerifier,
    *,
    pending: Session | None,
    state: str,
    code: str,
    now: datetime,
    lifetime: timedelta,
) -> SignIn:
    """Exchange the code, check the ID token and the access token, and replace the pending
    session by a signed-in one under a new id (a session id known before sign-in is never
    the signed-in one)."""
    if pending is None or pending.pending is None:
        raise SignInFailed("the sign-in took too long or began in another browser; try again")
    expected = pending.pending
    if not secrets.compare_digest(expected["state"], state):
        raise SignInFailed("the answer does not belong to this sign-in (state)")
    await store.remove(pending.id_hash)
    tokens = await provider.finish(
        code=code, code_verifier=expected["code_verifier"], nonce=expected["nonce"]
    )
    try:
        principal: Principal = await verifier.verify(tokens.access_token)
    except TokenError as exc:
        raise SignInFailed(f"the access token was refused: {exc.description}") from exc
    session_id = new_id()
    token_expiry = None if tokens.expires_in is None else now + timedelta(seconds=tokens.expires_in)
    await store.add(
        session_id,
        created_at=now,
        expires_at=now + lifetime,
        subject=principal.subject,
        email=principal.email,
        name=principal.name or tokens.claims.get("name"),
        roles=sorted(role.value for role in principal.roles),
        access_token=tokens.access_token,
        access_token_expires_at=token_expiry,
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token,
    )
    return SignIn(session_id=session_id, location=expected["return_to"])


async def refresh(
    store: SessionStore,
    provider: IdentityProvider,
    verifier: TokenVerifier,
    *,
    id_hash: str,
    now: datetime,
    before: timedelta,
) -> Session | None:
    """New tokens for a session whose access token ends within `before`, or None when the
    session has ended: the provider refused the refresh token (revoked, expired, or the
    person's provider session ended), and the session is deleted. A provider that does not
    answer ends nothing while the access token still holds: the next page tries again.

    The row stays locked from the read to the write: with rotating refresh tokens, two pages
    asked for at once would otherwise spend the same token twice, and the provider would
    take the second use for a replay and end both."""
    session = await store.get_by_hash(id_hash, now=now, for_update=True)
    if (
        session is None
        or session.refresh_token is None
        or not session.due_for_refresh(now, before=before)
    ):
        return session  # ended meanwhile, or refreshed by another request
    try:
        tokens = await provider.refresh(session.refresh_token)
        principal: Principal = await verifier.verify(tokens.access_token)
    except (SignInFailed, TokenError) as exc:
        if not isinstance(exc, (RefreshRefused, TokenError)) and session.signed_in(now):
            log.warning("console.refresh_unavailable", reason=str(exc))
            TOKEN_REFRESHES.labels("unavailable").inc()
            return session
        log.info("console.refresh_refused", reason=str(exc))
        TOKEN_REFRESHES.labels("refused").inc()
        await store.remove(id_hash)
        return None
    roles = sorted(role.value for role in principal.roles)
    expires = None if tokens.expires_in is None else now + timedelta(seconds=tokens.expires_in)
    # A provider that does not rotate sends no new refresh token: the old one stays good.
    refresh_token = tokens.refresh_token or session.refresh_token
    await store.replace_tokens(
        id_hash,
        access_token=tokens.access_token,
        access_token_expires_at=expires,
        refresh_token=refresh_token,
        id_token=tokens.id_token,
        roles=roles,
    )
    log.info("console.tokens_refreshed")
    TOKEN_REFRESHES.labels("refreshed").inc()
    return replace(
        session,
        access_token=tokens.access_token,
        access_token_expires_at=expires,
        refresh_token=refresh_token,
        id_token=tokens.id_token or session.id_token,
        roles=tuple(roles),
    )


async def sign_out(store: SessionStore, provider: IdentityProvider, session: Session) -> str:
    """Delete the session, revoke its refresh token at the provider (where it has a
    revocation endpoint), then send the browser to the provider's end_session_endpoint."""
    await store.remove(session.id_hash)
    if session.refresh_token is not None:
        await provider.revoke(session.refresh_token)
    return await provider.sign_out_url(id_token=session.id_token)
