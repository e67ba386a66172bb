"""Scoring's own tables, in its own schema."""

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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
    Column("previous_score", Integer),
    Column("previous_segment", String(20)),
    Column("transition", String(20)),
    Column("themes", ARRAY(String(40))),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_scoring_responses_customer_responded", "customer_id", "responded_at"),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
