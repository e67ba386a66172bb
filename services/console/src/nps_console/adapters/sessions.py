"""Sessions kept in PostgreSQL (the console's own schema), found by the hash of the cookie's
random id."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nps_console.adapters import tables


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

    def signed_in(self, now: datetime) -> bool:
        """Signed in, with an access token that has not expired."""
        return (
            self.access_token is not None
            and self.expires_at > now
            and (self.access_token_expires_at is None or self.access_token_expires_at > now)
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
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, session_id: str, **values: Any) -> Session:
        row = {"id_hash": hash_of(session_id), "csrf_token": secrets.token_urlsafe(32), **values}
        await self.session.execute(insert(tables.sessions).values(**row))
        return _session(row)

    async def get(self, session_id: str, *, now: datetime) -> Session | None:
        row = (
            (
                await self.session.execute(
                    select(tables.sessions).where(
                        tables.sessions.c.id_hash == hash_of(session_id),
                        tables.sessions.c.expires_at > now,
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _session(dict(row))

    async def remove(self, id_hash: str) -> None:
        await self.session.execute(
            delete(tables.sessions).where(tables.sessions.c.id_hash == id_hash)
        )

    async def remove_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(tables.sessions).where(tables.sessions.c.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def forget_tokens(self, id_hash: str) -> None:
        await self.session.execute(
            update(tables.sessions)
            .where(tables.sessions.c.id_hash == id_hash)
            .values(access_token=None, access_token_expires_at=None)
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
    )
