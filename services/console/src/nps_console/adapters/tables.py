"""The console's own tables (schema `console`): the server-side sessions of signed-in people.
The browser's cookie holds only a random id; the row is found by its SHA-256, so that the
table alone never lets anyone take a session over."""

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Text

metadata = MetaData(schema="console")

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: The session ends then at the latest (CONSOLE_SESSION_HOURS after it began).
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    #: While signing in: the state, PKCE code verifier, nonce and page to return to.
    Column("pending", JSON, nullable=True),
    #: Once signed in: who, and the tokens of the identity provider.
    Column("subject", String(200), nullable=True),
    Column("email", String(254), nullable=True),
    Column("name", String(200), nullable=True),
    Column("roles", JSON, nullable=True),
    #: The provider's tokens, each encrypted (Fernet, CONSOLE_SESSION_KEYS).
    Column("access_token", Text, nullable=True),
    Column("access_token_expires_at", DateTime(timezone=True), nullable=True),
    Column("id_token", Text, nullable=True),
    Column("refresh_token", Text, nullable=True),
    #: The last page asked for: the session ends CONSOLE_SESSION_IDLE_MINUTES later.
    Column("last_seen_at", DateTime(timezone=True), nullable=False, index=True),
)
