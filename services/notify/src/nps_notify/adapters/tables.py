"""Notify's own tables, in its own schema."""

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, Uuid

from nps_kit.outbox import outbox_table

metadata = MetaData(schema="notify")

#: The dispatch ledger: one row per action, written before and after the provider call.
dispatches = Table(
    "dispatches",
    metadata,
    Column("action_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("template", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("provider_message_id", String(500)),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
