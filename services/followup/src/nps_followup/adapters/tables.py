"""Followup's own tables, in its own schema."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

from nps_kit.inbox import inbox_table
from nps_kit.outbox import outbox_table

metadata = MetaData(schema="followup")

cases = Table(
    "cases",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("response_id", Uuid, nullable=False, unique=True),
    Column("source", String(100), nullable=False),
    Column("survey_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("customer_email", String(320)),
    Column("customer_name", String(200)),
    Column("segment", String(20), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text),
    Column("status", String(20), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Index("ix_cases_customer_id_opened_at", "customer_id", "opened_at"),
    Index("ix_cases_status_due_at", "status", "due_at"),
)

actions = Table(
    "actions",
    metadata,
    Column("action_id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("followup.cases.case_id"), nullable=False, index=True),
    Column("channel", String(20), nullable=False),
    Column("template", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("provider_message_id", String(500)),
    Column("reason", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
