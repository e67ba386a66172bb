"""referrals: the referral codes followup sent, and the referrals recorded against them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "referral_codes",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("issued_at", tz, nullable=False),
        schema=S,
    )
    op.create_index("ix_referral_codes_customer_id", "referral_codes", ["customer_id"], schema=S)
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("referred_at", tz, nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("recorded_at", tz, nullable=False),
        schema=S,
    )
    op.create_index("ix_referrals_referred_at", "referrals", ["referred_at"], schema=S)
    op.create_index("ix_referrals_customer_id", "referrals", ["customer_id"], schema=S)


def downgrade() -> None:
    op.drop_table("referrals", schema=S)
    op.drop_table("referral_codes", schema=S)
