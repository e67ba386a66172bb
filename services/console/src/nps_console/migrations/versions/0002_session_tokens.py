"""sessions: refresh tokens, idle lifetime, tokens encrypted

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 23:00:00

The tokens kept until now are in clear: the sessions are deleted (everyone signs in again),
so that no clear token is left behind a column that is now read as ciphertext.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM console.sessions")
    op.add_column(
        "sessions", sa.Column("refresh_token", sa.Text(), nullable=True), schema="console"
    )
    op.add_column(
        "sessions",
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        schema="console",
    )
    op.create_index(
        op.f("ix_console_sessions_last_seen_at"),
        "sessions",
        ["last_seen_at"],
        unique=False,
        schema="console",
    )


def downgrade() -> None:
    op.execute("DELETE FROM console.sessions")
    op.drop_index(op.f("ix_console_sessions_last_seen_at"), table_name="sessions", schema="console")
    op.drop_column("sessions", "last_seen_at", schema="console")
    op.drop_column("sessions", "refresh_token", schema="console")
