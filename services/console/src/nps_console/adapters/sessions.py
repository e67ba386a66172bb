"""Sessions kept in PostgreSQL (the console's own schema), found by the hash of the cookie's
random id. The provider's tokens are kept encrypted (Fernet: AES-128-CBC with HMAC-SHA256,
from `cryptography`), so that a copy of the table, a backup or a replica gives no one a
person's access."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nps_console.adapters import tables
from nps_kit.logging import get_logger

log = get_logger(__name__)

#: The columns that hold the provider's tokens, encrypted.
TOKEN_COLUMNS = ("access_token", "id_token", "refresh_token")


class TokenCipher:
    """Encrypts with the first key, decrypts with any (rotation: put the new key first, and
    drop the old one once every session written with it has ended)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("no key to encrypt the sessions' tokens with")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str | None) -> str | None:
        """The token, or an `InvalidToken` error when no key opens it."""
        return None if value is None else self._fernet.decrypt(value.encode()).decode()


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: signing in (`pending`), or signed in (`access_token`)."""

    id_hash: str
    created_at: datetime
    expires_at: datetime
    csrf_token: str
    pending: dict[str, str] | None = None
    subject: str | None = None
    email: str | None = None
    name: str | None = None
    roles: tuple[str, ...] = ()
    access_token: str | None = None
    access_token_expires_at: datetime | None = None
    id_token: str | None = None
    refresh_token: str | None = None
    last_seen_at: datetime | None = None

    def signed_in(self, now: datetime) -> bool:
        """Signed in, with an access token that has not expired."""
        return (
            self.access_token is not None
            and self.expires_at > now
            and (self.access_token_expires_at is None or self.access_token_expires_at > now)
        )

    def due_for_refresh(self, now: datetime, *, before: timedelta) -> bool:
        """Signed in with a refresh token, and the access token ends within `before`."""
        return (
            self.access_token is not None
            and self.refresh_token is not None
            and self.access_token_expires_at is not None
            and self.access_token_expires_at - before <= now
        )

    @property
    def who(self) -> str:
        return self.name or self.email or self.subject or "?"


def new_id() -> str:
    """A cookie's value: 256 random bits."""
    return secrets.token_urlsafe(32)


def hash_of(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """The sessions of one unit of work. `idle` ends a session that no page asked for that
    long (its `last_seen_at`); `expires_at` ends it at the latest."""

    def __init__(self, session: AsyncSession, *, cipher: TokenCipher, idle: timedelta) -> None:
        self.session = session
        self.cipher = cipher
        self.idle = idle

    async def add(self, session_id: str, **values: Any) -> Session:
        row = {
            "id_hash": hash_of(session_id),
            "csrf_token": secrets.token_urlsafe(32),
            "last_seen_at": values["created_at"],
            **values,
        }
        await self.session.execute(insert(tables.sessions).values(**self._sealed(row)))
        return _session(row)

    async def get(
        self, session_id: str, *, now: datetime, for_update: bool = False
    ) -> Session | None:
        return await self.get_by_hash(hash_of(session_id), now=now, for_update=for_update)

    async def get_by_hash(
        self, id_hash: str, *, now: datetime, for_update: bool = False
    ) -> Session | None:
        """A live session: neither past its end nor idle too long. `for_update` locks its row
        until the unit of work ends (one refresh at a time)."""
        query = select(tables.sessions).where(
            tables.sessions.c.id_hash == id_hash,
            tables.sessions.c.expires_at > now,
            tables.sessions.c.last_seen_at > now - self.idle,
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        if row is None:
            return None
        try:
            return _session(self._opened(dict(row)))
        except InvalidToken:
            # Its key was taken out of CONSOLE_SESSION_KEYS: the person signs in again.
            log.warning("console.session_key_unknown")
            return None

    async def seen(self, id_hash: str, now: datetime) -> None:
        await self.session.execute(
            update(tables.sessions)
            .where(tables.sessions.c.id_hash == id_hash)
            .values(last_seen_at=now)
        )

    async def replace_tokens(
        self,
        id_hash: str,
        *,
        access_token: str,
        access_token_expires_at: datetime | None,
        refresh_token: str | None,
        id_token: str | None,
        roles: list[str],
    ) -> None:
        values = self._sealed(
            {
                "access_token": access_token,
                "access_token_expires_at": access_token_expires_at,
                "refresh_token": refresh_token,
                "roles": roles,
            }
            | ({"id_token": id_token} if id_token is not None else {})
        )
        await self.session.execute(
            update(tables.sessions).where(tables.sessions.c.id_hash == id_hash).values(**values)
        )

    def _sealed(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: self.cipher.seal(v) if k in TOKEN_COLUMNS else v for k, v in row.items()}

    def _opened(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: self.cipher.open(v) if k in TOKEN_COLUMNS else v for k, v in row.items()}

    async def remove(self, id_hash: str) -> None:
        await self.session.execute(
            delete(tables.sessions).where(tables.sessions.c.id_hash == id_hash)
        )

    async def remove_expired(self, now: datetime) -> int:
        """Delete the sessions that have ended, by either lifetime."""
        result = await self.session.execute(
            delete(tables.sessions).where(
                or_(
                    tables.sessions.c.expires_at <= now,
                    tables.sessions.c.last_seen_at <= now - self.idle,
                )
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def forget_tokens(self, id_hash: str) -> None:
        await self.session.execute(
            update(tables.sessions)
            .where(tables.sessions.c.id_hash == id_hash)
            .values(access_token=None, access_token_expires_at=None, refresh_token=None)
        )


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id_hash=row["id_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        csrf_token=row["csrf_token"],
        pending=row.get("pending"),
        subject=row.get("subject"),
        email=row.get("email"),
        name=row.get("name"),
        roles=tuple(row.get("roles") or ()),
        access_token=row.get("access_token"),
        access_token_expires_at=row.get("access_token_expires_at"),
        id_token=row.get("id_token"),
        refresh_token=row.get("refresh_token"),
        last_seen_at=row.get("last_seen_at"),
    )
