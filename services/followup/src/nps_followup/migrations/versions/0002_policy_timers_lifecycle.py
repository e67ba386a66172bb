"""policy engine: case deadlines and lifecycle, durable timers, timeline, contact rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "followup"


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.alter_column("cases", "due_at", nullable=True, schema=S)
    for column in (
        sa.Column("customer", postgresql.JSONB(), nullable=True),
        sa.Column("remind_at", tz, nullable=True),
        sa.Column("second_level_at", tz, nullable=True),
        sa.Column("rule", sa.String(100), nullable=False, server_default=""),
        sa.Column("team", sa.String(100), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("first_contact_at", tz, nullable=True),
        sa.Column("resolved_at", tz, nullable=True),
        sa.Column("closed_at", tz, nullable=True),
        sa.Column("root_cause", sa.String(100), nullable=True),
        sa.Column("latest_score", sa.Integer(), nullable=True),
        sa.Column("recovered", sa.Boolean(), nullable=False, server_default="false"),
    ):
        op.add_column("cases", column, schema=S)
    op.create_index(
        "ix_cases_active_customer",
        "cases",
        ["customer_id"],
        schema=S,
        postgresql_where=sa.text("status IN ('open', 'contacted')"),
    )
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"], schema=S)
    op.create_index("ix_cases_owner_opened_at", "cases", ["owner", "opened_at"], schema=S)
    op.create_index("ix_cases_team_opened_at", "cases", ["team", "opened_at"], schema=S)
    op.alter_column("actions", "template", nullable=True, schema=S)
    for column in (
        sa.Column("priority", sa.String(20), nullable=True),
        sa.Column("recipient", sa.String(200), nullable=True),
        sa.Column("exempt_from_cap", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("scheduled_for", tz, nullable=True),
    ):
        op.add_column("actions", column, schema=S)

    op.create_table(
        "timers",
        sa.Column("timer_id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("followup.cases.case_id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("action_id", sa.Uuid(), nullable=True),
        sa.Column("fire_at", tz, nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("fired_at", tz, nullable=True),
        schema=S,
    )
    op.create_index(op.f("ix_followup_timers_case_id"), "timers", ["case_id"], schema=S)
    op.create_index(
        "ix_timers_pending_fire_at",
        "timers",
        ["fire_at"],
        schema=S,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "timeline",
        sa.Column("entry_id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("followup.cases.case_id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", tz, nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        schema=S,
    )
    op.create_index(
        "ix_timeline_case_id_seq", "timeline", ["case_id", "seq"], unique=False, schema=S
    )
    op.create_table(
        "do_not_contact",
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", tz, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "scope"),
        schema=S,
    )
    op.create_table(
        "last_messages",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("at", tz, nullable=False),
        schema=S,
    )
    op.create_table(
        "team_turns",
        sa.Column("team", sa.String(100), primary_key=True),
        sa.Column("turn", sa.Integer(), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("team_turns", schema=S)
    op.drop_table("last_messages", schema=S)
    op.drop_table("do_not_contact", schema=S)
    op.drop_index("ix_timeline_case_id_seq", table_name="timeline", schema=S)
    op.drop_table("timeline", schema=S)
    op.drop_index("ix_timers_pending_fire_at", table_name="timers", schema=S)
    op.drop_index(op.f("ix_followup_timers_case_id"), table_name="timers", schema=S)
    op.drop_table("timers", schema=S)
    for column in ("scheduled_for", "exempt_from_cap", "recipient", "priority"):
        op.drop_column("actions", column, schema=S)
    op.alter_column("actions", "template", nullable=False, schema=S)
    op.drop_index("ix_cases_active_customer", table_name="cases", schema=S)
    for index in ("ix_cases_team_opened_at", "ix_cases_owner_opened_at", "ix_cases_opened_at"):
        op.drop_index(index, table_name="cases", schema=S)
    for column in (
        "recovered",
        "latest_score",
        "root_cause",
        "closed_at",
        "resolved_at",
        "first_contact_at",
        "escalation_level",
        "owner",
        "team",
        "rule",
        "second_level_at",
        "remind_at",
        "customer",
    ):
        op.drop_column("cases", column, schema=S)
    op.alter_column("cases", "due_at", nullable=False, schema=S)
