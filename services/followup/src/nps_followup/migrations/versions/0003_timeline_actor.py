"""timeline actors: who did each step (a person or program from their token, or the system
applying a rule)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    # `actor` keeps what people read (an email, a client id, `system`); these say who it is.
    op.add_column("timeline", sa.Column("actor_kind", sa.String(10), nullable=True), schema=S)
    op.add_column("timeline", sa.Column("actor_id", sa.String(200), nullable=True), schema=S)
    op.add_column("timeline", sa.Column("actor_rule", sa.String(100), nullable=True), schema=S)


def downgrade() -> None:
    for column in ("actor_rule", "actor_id", "actor_kind"):
        op.drop_column("timeline", column, schema=S)
