"""cheaper writes of cases and actions: two index entries fewer per new case, room in the
pages for the in-place updates (HOT: no index written)

- `ix_cases_active_customer` (customer_id, active cases) goes: the locks on a customer's
  active cases are answered by `ix_cases_customer_id_opened_at` (a customer has a handful of
  cases; their status is checked on the rows read);
- `ix_cases_active_first_contact_at` holds only the cases reached (`first_contact_at IS NOT
  NULL`): the only query it answers asks for cases reached since a cursor's first page, and a
  new case (not reached yet) no longer enters it;
- `fillfactor` 90 on cases and actions: an update that changes no indexed column (notify's
  results on actions, an escalation's level on its case, the latest score) finds room in its
  row's page and is HOT.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"
ACTIVE = "status IN ('open', 'contacted')"


def upgrade() -> None:
    op.drop_index("ix_cases_active_customer", table_name="cases", schema=S)
    op.drop_index("ix_cases_active_first_contact_at", table_name="cases", schema=S)
    op.create_index(
        "ix_cases_active_first_contact_at",
        "cases",
        ["first_contact_at"],
        schema=S,
        postgresql_where=sa.text(f"{ACTIVE} AND first_contact_at IS NOT NULL"),
    )
    # New pages only: rows stored before keep their pages until rewritten (VACUUM FULL).
    op.execute(f"ALTER TABLE {S}.cases SET (fillfactor = 90)")
    op.execute(f"ALTER TABLE {S}.actions SET (fillfactor = 90)")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {S}.actions RESET (fillfactor)")
    op.execute(f"ALTER TABLE {S}.cases RESET (fillfactor)")
    op.drop_index("ix_cases_active_first_contact_at", table_name="cases", schema=S)
    op.create_index(
        "ix_cases_active_first_contact_at",
        "cases",
        ["first_contact_at"],
        schema=S,
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_cases_active_customer",
        "cases",
        ["customer_id"],
        schema=S,
        postgresql_where=sa.text(ACTIVE),
    )
