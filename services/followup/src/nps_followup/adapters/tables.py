"""Followup's own tables, in its own schema."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from nps_kit.inbox import inbox_table
from nps_kit.outbox import outbox_table

metadata = MetaData(schema="followup")

#: Statuses of a case a person still works; a customer has at most one such case.
ACTIVE = ("open", "contacted")

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
    #: The whole customer record of the response (PII): what later actions are sent with.
    Column("customer", JSONB),
    Column("segment", String(20), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text),
    #: Themes scoring found in the comment (ids of its taxonomy), for the queue's filter.
    Column("themes", ARRAY(String(40)), nullable=False, server_default=text("'{}'")),
    Column("status", String(20), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    #: The deadlines the policy gave the case when it opened (a later policy keeps them).
    Column("due_at", DateTime(timezone=True)),
    Column("remind_at", DateTime(timezone=True)),
    Column("second_level_at", DateTime(timezone=True)),
    Column("rule", String(100), nullable=False, server_default=""),
    Column("team", String(100)),
    Column("owner", String(200)),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("first_contact_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("root_cause", String(100)),
    Column("latest_score", Integer),
    Column("recovered", Boolean, nullable=False, server_default="false"),
    # A customer's cases, newest first; also the locks on a customer's active cases when
    # opening (a customer has a handful of cases: their status is checked on the rows read).
    Index("ix_cases_customer_id_opened_at", "customer_id", "opened_at"),
    Index("ix_cases_status_due_at", "status", "due_at"),
    # The case API's lists, newest first: all, by owner, by team.
    Index("ix_cases_opened_at", "opened_at"),
    Index("ix_cases_owner_opened_at", "owner", "opened_at"),
    Index("ix_cases_team_opened_at", "team", "opened_at"),
    # The queue in urgency order (migration 0005): one range scan per status and urgency
    # group, so that a page after a cursor costs what the first page costs.
    Index(
        "ix_cases_active_queue",
        "status",
        "due_at",
        "case_id",
        postgresql_where=text("status IN ('open', 'contacted')"),
    ),
    # The few cases reached since a cursor's first page (they keep their place in its walk);
    # a new case, not reached yet, is not written into it.
    Index(
        "ix_cases_active_first_contact_at",
        "first_contact_at",
        postgresql_where=text("status IN ('open', 'contacted') AND first_contact_at IS NOT NULL"),
    ),
    Index(
        "ix_cases_active_themes",
        "themes",
        postgresql_using="gin",
        postgresql_where=text("status IN ('open', 'contacted')"),
    ),
    # And a trigram index on `customer_search_text()` where PostgreSQL has pg_trgm: created
    # by migration 0005 only (its operator class lives in the extension's schema).
)


def customer_search_text() -> ColumnElement[str]:
    """The customer's name, email address and id in lower case, one text with a separator
    (U+001F, which no search can hold) so that a search never matches across two of them.
    Migration 0004 indexes this very expression with pg_trgm; change both or neither."""
    c = cases.c
    empty = literal_column("''", Text)
    separator = literal_column("chr(31)", Text)
    return func.lower(
        func.coalesce(c.customer_name, empty)
        + separator
        + func.coalesce(c.customer_email, empty)
        + separator
        + c.customer_id,
        type_=Text,
    )


actions = Table(
    "actions",
    metadata,
    Column("action_id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("followup.cases.case_id"), nullable=False, index=True),
    Column("channel", String(20), nullable=False),
    Column("template", String(100)),
    Column("priority", String(20)),
    #: For staff notifications: who (an address or a handle of the team).
    Column("recipient", String(200)),
    Column("exempt_from_cap", Boolean, nullable=False, server_default="false"),
    Column("state", String(20), nullable=False),
    Column("provider_message_id", String(500)),
    Column("reason", Text),
    Column("scheduled_for", DateTime(timezone=True)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Durable timers: scheduled actions and the escalation ladder. A sweeper takes the pending
#: ones that are due with FOR UPDATE SKIP LOCKED; the partial index keeps that an index scan
#: however many cases there are.
timers = Table(
    "timers",
    metadata,
    Column("timer_id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("followup.cases.case_id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("action_id", Uuid),
    Column("fire_at", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False, server_default="pending"),
    Column("fired_at", DateTime(timezone=True)),
    Index("ix_timers_pending_fire_at", "fire_at", postgresql_where=text("state = 'pending'")),
)

#: Everything that happened to a case, in order: what the API shows and the events record.
timeline = Table(
    "timeline",
    metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("followup.cases.case_id"), nullable=False),
    #: Global insertion order (no per-case counter to contend on).
    Column("seq", BigInteger, Identity(always=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    #: What people read (an email address, a client id, `system`)…
    Column("actor", String(200)),
    #: …and who it is: person, program or system; the token's subject or client id; the
    #: policy rule a system step applied.
    Column("actor_kind", String(10)),
    Column("actor_id", String(200)),
    Column("actor_rule", String(100)),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_timeline_case_id_seq", "case_id", "seq"),
)

#: Customers who asked not to be contacted, per channel (`all` for every channel).
do_not_contact = Table(
    "do_not_contact",
    metadata,
    Column("customer_id", String(200), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("source", String(100), nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("customer_id", "scope"),
)

#: When each customer was last sent a message: the frequency cap reads it.
last_messages = Table(
    "last_messages",
    metadata,
    Column("customer_id", String(200), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

#: Whose turn it is in each team's round-robin.
team_turns = Table(
    "team_turns",
    metadata,
    Column("team", String(100), primary_key=True),
    Column("turn", Integer, nullable=False),
)

#: Responses a rule would have acted on but followup did not, and why (`backfill`: imported
#: as history; `older_than_window`: answered longer ago than the rule's
#: `act_on_responses_within`). One row per response, the latest version's; no PII.
responses_not_acted_on = Table(
    "responses_not_acted_on",
    metadata,
    Column("response_id", Uuid, primary_key=True),
    #: For erasure.
    Column("customer_id", String(200), nullable=False),
    Column("source", String(100), nullable=False),
    Column("survey_id", String(200), nullable=False),
    Column("segment", String(20), nullable=False),
    Column("score", Integer, nullable=False),
    Column("responded_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(40), nullable=False),
    #: The rule that would have applied (none: only a case of the customer's would have).
    Column("rule", String(100)),
    Column("window", String(40), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_responses_not_acted_on_customer_id", "customer_id"),
)

#: A compact record of every scored response followup consumed (its latest revision), for
#: `nps-followup policy simulate`: what the policy's rules read, and no PII (whether the
#: customer has an email address or a phone number, not which). Filled by the consumer in the
#: transaction that applies the policy; erased with the customer.
scored_responses = Table(
    "scored_responses",
    metadata,
    Column("response_id", Uuid, primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("source", String(100), nullable=False),
    Column("survey_id", String(200), nullable=False),
    Column("segment", String(20), nullable=False),
    Column("score", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("responded_at", DateTime(timezone=True), nullable=False),
    #: When followup first applied the policy to the response.
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("backfill", Boolean, nullable=False),
    Column("has_email", Boolean, nullable=False),
    Column("has_phone", Boolean, nullable=False),
    Column("timezone", String(64)),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_scored_responses_responded_at", "responded_at"),
    Index("ix_scored_responses_customer_id", "customer_id"),
)

#: The latest re-survey requested for each closed case (`resurvey_after`), and the customer's
#: answer to it once they give one (migration 0007). What was held back is on the timeline.
resurveys = Table(
    "resurveys",
    metadata,
    Column("case_id", Uuid, ForeignKey("followup.cases.case_id"), primary_key=True),
    #: For erasure.
    Column("customer_id", String(200), nullable=False),
    #: The timer that asked: one per closing of the case.
    Column("timer_id", Uuid, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
    Column("answer_response_id", Uuid),
    Column("answer_score", Integer),
    Index("ix_resurveys_customer_id", "customer_id"),
)

#: Every referral code followup has sent (an HMAC of the customer id: domain/referrals.py),
#: so that a recorded referral finds its promoter; the case is the latest that sent it.
referral_codes = Table(
    "referral_codes",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("case_id", Uuid, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("ix_referral_codes_customer_id", "customer_id"),
)

#: Referrals recorded against a promoter's code, one row per client-given id (a retry with
#: the same id is the same referral). No PII: the referred party is the caller's reference.
referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(200), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("case_id", Uuid, nullable=False),
    Column("referred_at", DateTime(timezone=True), nullable=False),
    Column("reference", String(200)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_referrals_referred_at", "referred_at"),
    Index("ix_referrals_customer_id", "customer_id"),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
