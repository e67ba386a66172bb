"""the inbox's event id as a `uuid` (16 bytes) instead of its text (37): a smaller row, a
smaller primary-key entry, fewer page splits of that index (its keys are random)

Every event id a consumer claims is a UUID (the events' deterministic ids), written in its
canonical lower-case form, so each stored id converts to the same `uuid` a redelivery of its
event claims after the upgrade (and back to the same text on a downgrade). A stored id that
is not a UUID fails the upgrade, which then changes nothing.

Upgrade order: the code of this release claims ids as `uuid`, which the previous schema's
`varchar` column also takes; the previous release's code claims `varchar`, which this column
refuses (42804, a fault of the infrastructure class: its consumers pause and retry, nothing is
dead-lettered, until they are replaced). Roll the code back past this release only after
`downgrade` to 0005 (docs/operations.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:25:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "scoring"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {S}.inbox ALTER COLUMN event_id TYPE uuid USING event_id::uuid")


def downgrade() -> None:
    op.execute(
        f"ALTER TABLE {S}.inbox ALTER COLUMN event_id TYPE varchar(200) USING event_id::text"
    )
