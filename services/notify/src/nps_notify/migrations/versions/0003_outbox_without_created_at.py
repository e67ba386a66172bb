"""the outbox without `created_at`: read by nothing (the relay orders by `id`, the backlog is a
count), it cost 8 bytes of every row and of its WAL, and a `now()` per row

The previous release's code never names the column (its inserts leave it to the default), so
it keeps working on this schema. The downgrade adds the column back, rows still queued given
the time of the downgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "notify"


def upgrade() -> None:
    op.drop_column("outbox", "created_at", schema=S)


def downgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )
