"""Holdouts: which customers a rule of automated messages holds out (a share, stable and
recomputable from the rule and the customer id), which rules may not hold anyone out (refused
at load, with the line), and what the consumer does with a held-out customer's answer."""

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from nps_events import Customer, ResponseScored, Segment
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import PolicyError, default_policy_text, parse_policy
from nps_followup.domain.cases import NotActedOn
from nps_followup.domain.holdout import draw, is_held_out
from nps_followup.domain.simulation import StoredResponse, simulate
from nps_followup.entrypoints.api import RuleOut
from nps_followup.handlers import PolicyInForce, apply_policy
from tests.support.followup_fakes import InMemoryOpening

NOW = datetime(2026, 3, 3, 10, tzinfo=UTC)
TEN = Decimal(10)
CUSTOMERS = [f"customer-{i}" for i in range(20_000)]
#: The default policy with a holdout of 10% on its passive rule.
WITH_HOLDOUT = default_policy_text().replace(
    "    when: {segment: passive}\n", "    when: {segment: passive}\n    holdout: 10%\n"
)


def test_a_ten_percent_holdout_takes_about_a_tenth_of_the_customers() -> None:
    held = sum(is_held_out("passive", c, TEN) for c in CUSTOMERS)
    # Binomial(20,000, 0.1): standard deviation 42; four of them either side.
    assert 2_000 - 170 <= held <= 2_000 + 170


def test_the_choice_is_stable_and_anyone_can_recompute_it() -> None:
    first = [c for c in CUSTOMERS[:2_000] if is_held_out("passive", c, TEN)]
    again = [c for c in CUSTOMERS[:2_000] if is_held_out("passive", c, TEN)]
    assert first == again
    for customer in CUSTOMERS[:50]:  # the documented formula (docs/impact.md)
        digest = hashlib.sha256(f"holdout\x1fpassive\x1f{customer}".encode()).digest()
        place = int.from_bytes(digest[:8], "big") / 2**64 * 100
        assert float(draw("passive", customer)) == pytest.approx(place)


def test_each_rule_draws_its_own_holdout() -> None:
    passive = {c for c in CUSTOMERS if is_held_out("passive", c, TEN)}
    promoter = {c for c in CUSTOMERS if is_held_out("promoter", c, TEN)}
    # Independent draws: about a tenth of one holdout is in the other, not all of it.
    assert 0.05 < len(passive & promoter) / len(passive) < 0.15


def test_a_larger_share_keeps_everyone_a_smaller_one_held_out() -> None:
    small = {c for c in CUSTOMERS if is_held_out("passive", c, Decimal(5))}
    large = {c for c in CUSTOMERS if is_held_out("passive", c, TEN)}
    assert small < large


def test_a_policy_sets_a_holdout_as_a_percentage_on_a_rule_of_messages() -> None:
    policy = parse_policy(WITH_HOLDOUT)
    assert {r.name: r.holdout for r in policy.rules} == {
        "detractor": None,
        "passive": TEN,
        "promoter": None,
    }
    # GET /v1/policy shows it as written.
    assert [RuleOut.of(r).holdout for r in policy.rules] == [None, "10%", None]


@pytest.mark.parametrize(
    ("old", "new", "line", "says"),
    [
        (  # the detractor rule opens a case for a person
            "    when: {segment: detractor}\n",
            "    when: {segment: detractor}\n    holdout: 10%\n",
            42,
            "opens a case for a person",
        ),
        (  # a ticket is a person's work too
            "        template: passive_education\n        after: 1 day\n",
            "        template: passive_education\n        after: 1 day\n"
            "      - kind: ticket\n    holdout: 10%\n",
            62,
            "helpdesk ticket",
        ),
        (
            "    when: {segment: passive}\n",
            "    when: {segment: passive}\n    holdout: 0%\n",
            57,
            "0%",
        ),
        (
            "    when: {segment: passive}\n",
            "    when: {segment: passive}\n    holdout: 60%\n",
            57,
            "50%",
        ),
        (
            "    when: {segment: passive}\n",
            "    when: {segment: passive}\n    holdout: 10\n",
            57,
            "'10%'",
        ),
    ],
)
def test_a_holdout_a_rule_may_not_have_is_refused_with_its_line(
    old: str, new: str, line: int, says: str
) -> None:
    text = default_policy_text()
    assert old in text
    with pytest.raises(PolicyError) as refused:
        parse_policy(text.replace(old, new), name="p.yaml")
    [problem] = refused.value.problems
    assert (problem.line, problem.where) == (
        line,
        f"rules.{0 if 'detractor' in old else 1}.holdout",
    )
    assert says in problem.message


def _passive(customer: str) -> ResponseScored:
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer=Customer(id=customer, email=f"{customer}@example.com"),
        score=7,
        segment=Segment.PASSIVE,
        comment=None,
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=uuid.uuid4(),
    )


async def test_a_held_out_passive_gets_no_case_and_is_set_aside_with_the_reason() -> None:
    policy = parse_policy(WITH_HOLDOUT)
    held = next(c for c in CUSTOMERS if is_held_out("passive", c, TEN))
    treated = next(c for c in CUSTOMERS if not is_held_out("passive", c, TEN))
    repo = InMemoryOpening()

    applied = await apply_policy(
        repo,
        [_passive(held), _passive(treated)],
        now=NOW,
        policy=PolicyInForce(policy=policy, holidays_for=holidays_for(policy)),
    )

    assert [c.customer_id for c in applied.opened] == [treated]
    [aside] = applied.not_acted_on
    assert (aside.customer_id, aside.reason, aside.rule) == (held, NotActedOn.HOLDOUT, "passive")
    assert {c.customer_id for c in repo.cases.values()} == {treated}


def test_policy_simulate_holds_out_whom_the_consumer_would() -> None:
    policy = parse_policy(WITH_HOLDOUT)
    held = [c for c in CUSTOMERS[:200] if is_held_out("passive", c, TEN)]
    stored = [StoredResponse.of(_passive(c), received_at=NOW) for c in CUSTOMERS[:200]]

    out = simulate(stored, policy=policy, holidays_for=holidays_for(policy), opted_out={})

    assert out.not_acted_on == {"holdout": len(held)}
    assert out.messages == {("email", "passive_education"): 200 - len(held)}
    assert out.cases_per_team == {"(automated)": 200 - len(held)}
