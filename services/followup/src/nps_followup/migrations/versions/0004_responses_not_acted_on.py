"""responses not acted on: history imported as back-fill, and responses older than the
policy's act_on_responses_within, recorded with the reason

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "responses_not_acted_on",
        sa.Column("response_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("survey_id", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("responded_at", tz, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(100), nullable=True),
        sa.Column("window", sa.String(40), nullable=False),
        sa.Column("recorded_at", tz, nullable=False),
        schema=S,
    )
    op.create_index(
        "ix_responses_not_acted_on_customer_id",
        "responses_not_acted_on",
        ["customer_id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("responses_not_acted_on", schema=S)
