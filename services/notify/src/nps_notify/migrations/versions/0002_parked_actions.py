"""parked actions: deferred by their provider or held by an open circuit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parked",
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("ce_type", sa.String(length=200), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("action_id"),
        schema="notify",
    )
    op.create_index("parked_due", "parked", ["not_before"], unique=False, schema="notify")


def downgrade() -> None:
    op.drop_index("parked_due", table_name="parked", schema="notify")
    op.drop_table("parked", schema="notify")
