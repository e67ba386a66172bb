"""Opening cases from a batch of scored responses through followup's handler, against the
in-memory fake of its port: how a batch shares out the team's round-robin turns, and what a
redelivered batch leaves alone."""

import uuid
from datetime import UTC, datetime

from nps_events import Customer, ResponseScored, Segment
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.handlers import PolicyInForce, open_cases
from tests.support.followup_fakes import InMemoryOpening

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
TEAM = "customer-success"
MEMBERS = _POLICY.teams[TEAM].members  # alex@, sam@ (round-robin in this order)
#: Tuesday morning in London: inside the team's business hours.
NOW = datetime(2026, 3, 3, 10, tzinfo=UTC)


def detractor(customer: str, *, attributes: dict[str, str] | None = None) -> ResponseScored:
    """A new detractor's answer, which the default policy's `detractor` rule gives an owner by
    account owner, else round-robin over the team."""
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer=Customer(
            id=customer, email=f"{customer}@example.com", name="Ada", attributes=attributes or {}
        ),
        score=2,
        segment=Segment.DETRACTOR,
        comment="slow support",
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=uuid.uuid4(),
    )


async def test_the_cases_of_one_batch_take_the_teams_turns_in_order() -> None:
    repo = InMemoryOpening()

    opened = await open_cases(repo, [detractor(f"c-{i}") for i in range(3)], now=NOW, policy=POLICY)

    assert [c.owner for c in opened] == [MEMBERS[0], MEMBERS[1], MEMBERS[0]]
    assert repo.turns == {TEAM: 2}  # one reservation of three turns: 0, 1, 2


async def test_the_next_batch_goes_on_from_the_turn_the_last_one_stopped_at() -> None:
    repo = InMemoryOpening()
    await open_cases(repo, [detractor("c-1")], now=NOW, policy=POLICY)

    opened = await open_cases(repo, [detractor("c-2"), detractor("c-3")], now=NOW, policy=POLICY)

    assert [c.owner for c in opened] == [MEMBERS[1], MEMBERS[0]]


async def test_a_case_given_to_the_account_owner_takes_no_turn_from_the_others() -> None:
    repo = InMemoryOpening()
    batch = [
        detractor("c-1"),
        detractor("c-2", attributes={"account_owner": "am@example.com"}),
        detractor("c-3"),
    ]

    opened = await open_cases(repo, batch, now=NOW, policy=POLICY)

    assert [c.owner for c in opened] == [MEMBERS[0], "am@example.com", MEMBERS[1]]
    assert repo.turns == {TEAM: 1}


async def test_a_redelivered_batch_opens_nothing_and_takes_no_turns() -> None:
    repo = InMemoryOpening()
    batch = [detractor("c-1"), detractor("c-2")]
    first = await open_cases(repo, batch, now=NOW, policy=POLICY)
    published = len(repo.published)

    again = await open_cases(repo, batch, now=NOW, policy=POLICY)

    assert again == []
    assert len(repo.cases) == len(first) == 2
    assert repo.turns == {TEAM: 1}
    assert len(repo.published) == published
