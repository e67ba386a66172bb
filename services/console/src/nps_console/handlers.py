"""The console's use cases: signing in and out. Working a case is the APIs' business; the
console only asks them, with the person's token."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nps_console.adapters.oidc import IdentityProvider, SignInFailed
from nps_console.adapters.sessions import Session, SessionStore, new_id
from nps_kit.auth import Principal, TokenError, TokenVerifier

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
    token_expiry = (
        None if tokens.expires_at is None else datetime.fromtimestamp(tokens.expires_at, UTC)
    )
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
    )
    return SignIn(session_id=session_id, location=expected["return_to"])


async def sign_out(store: SessionStore, provider: IdentityProvider, session: Session) -> str:
    """Delete the session, then send the browser to the provider's end_session_endpoint."""
    await store.remove(session.id_hash)
    return await provider.sign_out_url(id_token=session.id_token)
