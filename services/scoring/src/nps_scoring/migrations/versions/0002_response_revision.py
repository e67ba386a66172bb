"""responses.revision: how many versions of a response were scored

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "responses",
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_column("responses", "revision", schema="scoring")
