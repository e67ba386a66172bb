"""scored responses: a compact record of every scored response followup consumed, for
`nps-followup policy simulate` (no PII)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "scored_responses",
        sa.Column("response_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("survey_id", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("responded_at", tz, nullable=False),
        sa.Column("received_at", tz, nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("has_email", sa.Boolean(), nullable=False),
        sa.Column("has_phone", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        schema=S,
    )
    op.create_index(
        "ix_scored_responses_responded_at", "scored_responses", ["responded_at"], schema=S
    )
    op.create_index(
        "ix_scored_responses_customer_id", "scored_responses", ["customer_id"], schema=S
    )


def downgrade() -> None:
    op.drop_table("scored_responses", schema=S)
