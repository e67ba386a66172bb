"""the case queue at scale: themes on cases, an index of active cases in urgency order, and
a trigram index for searching customers (where PostgreSQL has pg_trgm)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"
ACTIVE = sa.text("status IN ('open', 'contacted')")
#: `adapters.tables.customer_search_text()`, word for word: the planner matches expressions.
SEARCH_TEXT = (
    "lower(coalesce(customer_name, '') || chr(31) || coalesce(customer_email, '') "
    "|| chr(31) || customer_id)"
)


def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column("themes", postgresql.ARRAY(sa.String(40)), nullable=False, server_default="{}"),
        schema=S,
    )
    op.create_index(
        "ix_cases_active_queue",
        "cases",
        ["status", "due_at", "case_id"],
        schema=S,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_cases_active_first_contact_at",
        "cases",
        ["first_contact_at"],
        schema=S,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_cases_active_themes",
        "cases",
        ["themes"],
        schema=S,
        postgresql_using="gin",
        postgresql_where=ACTIVE,
    )
    trgm = _trigram_schema()
    if trgm is not None:
        op.execute(
            f"CREATE INDEX ix_cases_customer_search ON {S}.cases USING gin "
            f'(({SEARCH_TEXT}) "{trgm}".gin_trgm_ops)'
        )


def _trigram_schema() -> str | None:
    """The schema of pg_trgm, created here if the server ships it and we may; None without
    it (the search still works, by scanning the cases its other filters leave)."""
    bind = op.get_bind()
    installed = bind.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()
    if installed is not None:
        return str(installed)
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if available is None:
        return None
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return None  # not ours to create (no privilege): search without the index
    return _trigram_schema()


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {S}.ix_cases_customer_search")
    op.drop_index("ix_cases_active_themes", "cases", schema=S)
    op.drop_index("ix_cases_active_first_contact_at", "cases", schema=S)
    op.drop_index("ix_cases_active_queue", "cases", schema=S)
    op.drop_column("cases", "themes", schema=S)
