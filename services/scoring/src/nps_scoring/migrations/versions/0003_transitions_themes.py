"""responses: previous response, transition, themes, the customer's locale and attributes

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("responses", sa.Column("previous_score", sa.Integer()), schema="scoring")
    op.add_column("responses", sa.Column("previous_segment", sa.String(20)), schema="scoring")
    op.add_column("responses", sa.Column("transition", sa.String(20)), schema="scoring")
    op.add_column(
        "responses", sa.Column("themes", postgresql.ARRAY(sa.String(40))), schema="scoring"
    )
    op.add_column("responses", sa.Column("locale", sa.String(10)), schema="scoring")
    op.add_column(
        "responses",
        sa.Column(
            "attributes",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        schema="scoring",
    )
    op.create_index(
        "ix_scoring_responses_customer_responded",
        "responses",
        ["customer_id", "responded_at"],
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_scoring_responses_customer_responded", table_name="responses", schema="scoring"
    )
    for column in (
        "attributes",
        "locale",
        "themes",
        "transition",
        "previous_segment",
        "previous_score",
    ):
        op.drop_column("responses", column, schema="scoring")
