"""`policy simulate`'s replay on a small constructed set whose every figure is worked out by
hand below, with the policy's own rules: windows, attaching to an active case, round-robin and
account owners, business-day deadlines, delivery hours, and each contact rule that holds a
message back."""

import argparse
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nps_events import Segment
from nps_followup.__main__ import simulate_policy
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import parse_policy
from nps_followup.domain.simulation import Outcome, StoredResponse, simulate

POLICY = parse_policy(
    """
version: 1
teams:
  cs:
    timezone: UTC
    business_hours: {start: "09:00", end: "17:00"}
    lead: lead@x.io
    members: [a@x.io, b@x.io]
contact:
  frequency_cap: 7 days
  delivery_hours: {start: "09:00", end: "18:00"}
root_causes: [other]
rules:
  - name: detractor
    when: {segment: detractor}
    case: {team: cs, owner: account_owner, contact_within: 2 business days}
    actions:
      - {kind: email, template: detractor_ack, exempt_from_frequency_cap: true}
      - {kind: ticket, priority: high}
  - name: passive
    when: {segment: passive}
    actions:
      - {kind: email, template: passive_education, after: 1 day}
"""
)
HOLIDAYS = holidays_for(POLICY)
SEGMENTS = {"d": Segment.DETRACTOR, "p": Segment.PASSIVE, "P": Segment.PROMOTER}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _stored(
    n: int,
    customer: str,
    segment: str,
    received: str,
    *,
    answered: str | None = None,
    backfill: bool = False,
    email: bool = True,
    attributes: dict[str, str] | None = None,
) -> StoredResponse:
    return StoredResponse(
        response_id=uuid.UUID(int=n),
        customer_id=customer,
        source="web",
        survey_id="s",
        segment=SEGMENTS[segment],
        score={"d": 2, "p": 7, "P": 10}[segment],
        revision=1,
        responded_at=_at(answered or received),
        received_at=_at(received),
        backfill=backfill,
        has_email=email,
        has_phone=False,
        timezone=None,
        attributes=attributes or {},
    )


# 2026-03-02 is a Monday.
RESPONSES = [
    # Case 1 (turn 0: a), due Wed 10:00; the acknowledgement and the ticket go at once.
    _stored(1, "c1", "d", "2026-03-02T10:00"),
    # c1's case is still waiting for contact: joins it.
    _stored(2, "c1", "p", "2026-03-03T12:00"),
    # Automated; the email planned for Wed 20:00 moves to Thu 09:00 (delivery hours): sent.
    _stored(3, "c2", "p", "2026-03-03T20:00"),
    # Automated; Sat 08:00 moves to Sat 09:00 (delivery hours); c2 was messaged on Thursday:
    # held back by the frequency cap.
    _stored(4, "c2", "p", "2026-03-06T08:00"),
    # Case 2 (turn 1: b), due Fri 16:00; no email address: the acknowledgement is held back.
    _stored(5, "c3", "d", "2026-03-04T16:00", email=False),
    # History: not acted on.
    _stored(6, "c4", "d", "2026-03-04T09:00", backfill=True),
    # No rule for promoters.
    _stored(7, "c5", "P", "2026-03-04T09:30"),
    # Answered a month before followup saw it (window: 7 days): not acted on.
    _stored(8, "c6", "d", "2026-03-05T10:00", answered="2026-02-01T10:00"),
    # c1's first case passed its deadline (Wed 10:00): a new case (turn 2: a), due Mon 11:00;
    # the acknowledgement is exempt from the cap.
    _stored(9, "c1", "d", "2026-03-05T11:00"),
    # Case 4 goes to the account owner a (no turn taken), due Mon 12:00; c7 is on the
    # do-not-contact list: the acknowledgement is held back, the ticket is not.
    _stored(10, "c7", "d", "2026-03-05T12:00", attributes={"account_owner": "a@x.io"}),
]
OPTED_OUT = {"c7": {"all"}}


def _replay(*, as_answered: bool = False) -> Outcome:
    return simulate(
        reversed(RESPONSES),  # any order in: replayed in the order received
        policy=POLICY,
        holidays_for=HOLIDAYS,
        opted_out=OPTED_OUT,
        as_answered=as_answered,
    )


def test_replay_counts_what_the_policy_would_have_done_as_worked_out_by_hand() -> None:
    out = _replay()
    assert (out.responses, out.no_rule, out.attached) == (10, 1, 1)
    assert out.not_acted_on == Counter({"backfill": 1, "older_than_window": 1})
    assert out.cases_per_team == Counter({"cs": 4, "(automated)": 2})
    assert out.cases_per_day == Counter(
        {date(2026, 3, 2): 1, date(2026, 3, 4): 1, date(2026, 3, 5): 2}
    )
    assert out.messages == Counter(
        {("email", "detractor_ack"): 2, ("ticket", "high"): 4, ("email", "passive_education"): 1}
    )
    assert out.held_back == Counter({"frequency_cap": 1, "no_address": 1, "do_not_contact": 1})
    assert out.moved == Counter({"delivery_hours": 2})
    assert out.deadlines == {
        "a@x.io": Counter({date(2026, 3, 4): 1, date(2026, 3, 9): 2}),
        "b@x.io": Counter({date(2026, 3, 6): 1}),
    }
    assert out.deadline_load() == {"a@x.io": (3, 2), "b@x.io": (1, 1)}


def test_replay_as_answered_acts_on_history_and_old_answers() -> None:
    out = _replay(as_answered=True)
    assert out.not_acted_on == Counter()
    # c4's back-filled answer and c6's month-old one open cases of their own.
    assert out.cases_per_team == Counter({"cs": 6, "(automated)": 2})
    assert out.cases_per_day[date(2026, 2, 1)] == 1


def test_a_policy_without_a_rule_for_a_segment_opens_nothing_for_it() -> None:
    quiet = POLICY.model_copy(update={"rules": POLICY.rules[:1]})
    out = simulate(RESPONSES, policy=quiet, holidays_for=HOLIDAYS, opted_out=OPTED_OUT)
    assert "(automated)" not in out.cases_per_team
    assert ("email", "passive_education") not in out.messages
    # r2 still joins c1's case; r3 and r4 have no rule now, beside r7.
    assert (out.no_rule, out.attached) == (3, 1)


def _args(policy: Path, start: str, end: str) -> argparse.Namespace:
    return argparse.Namespace(
        policy=str(policy),
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        as_answered=False,
        json=False,
    )


def test_simulate_refuses_an_invalid_policy_with_its_lines_before_reading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: nope\n")
    assert simulate_policy(_args(bad, "2026-01-01", "2026-06-30")) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err
    assert "rules" in err
    assert "Traceback" not in err


def test_simulate_refuses_a_period_that_ends_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate_policy(_args(tmp_path / "any.yaml", "2026-06-30", "2026-01-01")) == 2
    assert "before --from" in capsys.readouterr().err
