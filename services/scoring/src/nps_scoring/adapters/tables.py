"""Scoring's own tables, in its own schema."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)
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
    Column("locale", String(10)),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_scoring_responses_customer_responded", "customer_id", "responded_at"),
    # Questions the figures cannot answer scan the responses of a date range.
    Index("ix_scoring_responses_responded_at", "responded_at"),
)

# NPS figures, kept up to date in the transaction that scores the responses: per grain (day,
# week, month), dimension (all, source, survey, theme, attribute:<key>) and its value, the
# counts per segment of the responses answered in the period that starts on period_start.
# (No CHECK that counts stay >= 0: PostgreSQL checks the row an INSERT … ON CONFLICT proposes,
# so a negative delta for an existing bucket would be refused before it is added.)
figures = Table(
    "figures",
    metadata,
    Column("grain", String(5), primary_key=True),
    Column("dimension", String(60), primary_key=True),
    Column("value", String(200), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("promoters", BigInteger, nullable=False),
    Column("passives", BigInteger, nullable=False),
    Column("detractors", BigInteger, nullable=False),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
