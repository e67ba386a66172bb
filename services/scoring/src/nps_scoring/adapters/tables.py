"""Scoring's own tables, in its own schema."""

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, Uuid

from nps_kit.inbox import inbox_table
from nps_kit.outbox import outbox_table

metadata = MetaData(schema="scoring")

responses = Table(
    "responses",
    metadata,
    Column("response_id", Uuid, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("survey_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False, index=True),
    Column("score", Integer, nullable=False),
    Column("segment", String(20), nullable=False),
    Column("comment", Text),
    Column("responded_at", DateTime(timezone=True), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False, server_default="1"),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
