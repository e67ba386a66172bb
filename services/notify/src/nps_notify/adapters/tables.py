"""Notify's own tables, in its own schema."""

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid

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

#: Actions waiting for another try: deferred by their provider (429, 5xx) or held while their
#: channel's circuit is open. The action itself is kept, so nothing depends on Kafka to retry.
parked = Table(
    "parked",
    metadata,
    Column("action_id", Uuid, primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("ce_type", String(200), nullable=False),
    Column("action", Text, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("reason", Text),
    Index("parked_due", "not_before"),
)

outbox = outbox_table(metadata)
