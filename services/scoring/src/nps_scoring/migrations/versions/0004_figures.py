"""figures: NPS counts per grain, dimension, value and period

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "figures",
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("dimension", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("promoters", sa.BigInteger(), nullable=False),
        sa.Column("passives", sa.BigInteger(), nullable=False),
        sa.Column("detractors", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "dimension", "value", "period_start"),
        schema="scoring",
    )
    # Responses scored before the figures existed are counted by `nps-scoring
    # rebuild-figures`, which recomputes the table from scoring.responses.


def downgrade() -> None:
    op.drop_table("figures", schema="scoring")
