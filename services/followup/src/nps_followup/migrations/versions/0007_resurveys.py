"""resurveys: the re-survey requested for each closed case (`resurvey_after`) and the
customer's answer to it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "resurveys",
        sa.Column(
            "case_id",
            sa.Uuid(),
            sa.ForeignKey("followup.cases.case_id"),
            primary_key=True,
        ),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("timer_id", sa.Uuid(), nullable=False),
        sa.Column("closed_at", tz, nullable=False),
        sa.Column("requested_at", tz, nullable=False),
        sa.Column("answered_at", tz, nullable=True),
        sa.Column("answer_response_id", sa.Uuid(), nullable=True),
        sa.Column("answer_score", sa.Integer(), nullable=True),
        schema=S,
    )
    op.create_index("ix_resurveys_customer_id", "resurveys", ["customer_id"], schema=S)


def downgrade() -> None:
    op.drop_table("resurveys", schema=S)
