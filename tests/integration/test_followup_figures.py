"""Closed-loop figures on generated cases whose answers are known: computed here by brute force
in Python, and by followup in one SQL pass."""

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from nps_followup.adapters import tables
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import GroupFigures, figures
from nps_kit.db import SessionFactory, unit_of_work

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Generated:
    team: str
    owner: str
    segment: str
    status: str
    opened_at: datetime
    due_at: datetime
    first_contact_at: datetime | None
    resolved_at: datetime | None
    latest_score: int | None
    recovered: bool


def generate(count: int, seed: int) -> list[Generated]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        opened = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 55))
        due = opened + 48 * HOUR
        contact = (
            opened + timedelta(minutes=rng.randrange(5, 60 * 96)) if rng.random() < 0.8 else None
        )
        if contact is not None and contact > NOW:
            contact = None
        resolved = None
        status = "open"
        if contact is not None:
            status = "contacted"
            if rng.random() < 0.6 and contact + 24 * HOUR < NOW:
                resolved = contact + timedelta(minutes=rng.randrange(10, 60 * 72))
                resolved = min(resolved, NOW)
                status = "closed" if rng.random() < 0.7 else "resolved"
        segment = rng.choice(["detractor", "detractor", "passive"])
        latest = rng.choice([None, None, 3, 8, 9, 10])
        cases.append(
            Generated(
                team=rng.choice(["emea", "americas"]),
                owner=rng.choice(["ana", "ben", "chi"]),
                segment=segment,
                status=status,
                opened_at=opened,
                due_at=due,
                first_contact_at=contact,
                resolved_at=resolved,
                latest_score=latest,
                recovered=segment == "detractor" and latest is not None and latest >= 9,
            )
        )
    # Automated cases never count.
    cases.append(Generated("emea", "ana", "promoter", "automated", T0, T0, None, None, None, False))
    return cases


def percentile(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected(cases: list[Generated], key: str) -> dict[str, dict[str, object]]:
    groups: dict[str, list[Generated]] = defaultdict(list)
    for c in cases:
        if c.status == "automated":
            continue
        group = (
            c.opened_at.strftime("%Y-%m-%d")
            if key == "day"
            else "all"
            if key == "all"
            else str(getattr(c, key))
        )
        groups[group].append(c)
    answers = {}
    for group, members in groups.items():
        on_time = sum(1 for c in members if c.first_contact_at and c.first_contact_at <= c.due_at)
        breached = sum(
            1
            for c in members
            if (c.first_contact_at is None and c.due_at < NOW)
            or (c.first_contact_at is not None and c.first_contact_at > c.due_at)
        )
        later = [c for c in members if c.segment == "detractor" and c.latest_score is not None]
        contact = [
            (c.first_contact_at - c.opened_at).total_seconds()
            for c in members
            if c.first_contact_at
        ]
        resolution = [
            (c.resolved_at - c.opened_at).total_seconds() for c in members if c.resolved_at
        ]
        closed = sum(1 for c in members if c.status == "closed")
        answers[group] = {
            "cases": len(members),
            "open": sum(1 for c in members if c.status in ("open", "contacted")),
            "breached": breached,
            "sla_compliance": on_time / (on_time + breached) if on_time + breached else None,
            "closed_loop_rate": closed / len(members),
            "recovery_rate": sum(c.recovered for c in later) / len(later) if later else None,
            "first_contact_p50": percentile(contact, 0.5),
            "first_contact_p90": percentile(contact, 0.9),
            "resolution_p50": percentile(resolution, 0.5),
            "resolution_p90": percentile(resolution, 0.9),
        }
    return answers


def observed(found: list[GroupFigures]) -> dict[str, dict[str, object]]:
    return {
        str(g.group): {
            "cases": g.counts.cases,
            "open": g.counts.open,
            "breached": g.counts.breached,
            "sla_compliance": g.rates.sla_compliance,
            "closed_loop_rate": g.rates.closed_loop_rate,
            "recovery_rate": g.rates.recovery_rate,
            "first_contact_p50": g.counts.first_contact_p50,
            "first_contact_p90": g.counts.first_contact_p90,
            "resolution_p50": g.counts.resolution_p50,
            "resolution_p90": g.counts.resolution_p90,
        }
        for g in found
    }


GENERATED = generate(400, seed=20261124)


@pytest.fixture(scope="module")
async def loaded(sessions: SessionFactory) -> None:
    async with unit_of_work(sessions) as session:
        await session.execute(
            insert(tables.cases),
            [
                {
                    "case_id": uuid.uuid4(),
                    "response_id": uuid.uuid4(),
                    "source": "gen",
                    "survey_id": "gen",
                    "customer_id": f"gen-{index}",
                    "segment": c.segment,
                    "score": 3,
                    "status": c.status,
                    "opened_at": c.opened_at,
                    "due_at": c.due_at,
                    "rule": "generated",
                    "team": c.team,
                    "owner": c.owner,
                    "first_contact_at": c.first_contact_at,
                    "resolved_at": c.resolved_at,
                    "latest_score": c.latest_score,
                    "recovered": c.recovered,
                }
                for index, c in enumerate(GENERATED)
            ],
        )


@pytest.mark.parametrize("group_by", ["all", "team", "owner", "segment", "day"])
async def test_figures_match_a_brute_force_count(
    sessions: SessionFactory, loaded: None, group_by: str
) -> None:
    async with sessions() as session:
        found = await figures(
            FollowupRepository(session), group_by=group_by, start=None, end=None, now=NOW
        )
    got, want = observed(found), expected(GENERATED, group_by)
    assert set(got) == set(want)
    for group, answer in want.items():
        assert got[group] == pytest.approx(answer), group


async def test_figures_of_a_period_count_only_cases_opened_in_it(
    sessions: SessionFactory, loaded: None
) -> None:
    start, end = T0 + timedelta(days=10), T0 + timedelta(days=20)
    async with sessions() as session:
        [found] = await figures(
            FollowupRepository(session), group_by="all", start=start, end=end, now=NOW
        )
    inside = [c for c in GENERATED if start <= c.opened_at < end]
    assert observed([found])["all"] == pytest.approx(expected(inside, "all")["all"])


def test_a_tiny_data_set_by_hand() -> None:
    """The oracle itself, on answers worked out by hand."""
    due = T0 + 48 * HOUR
    cases = [
        Generated("t", "o", "detractor", "closed", T0, due, T0 + 2 * HOUR, T0 + 10 * HOUR, 9, True),
        Generated("t", "o", "detractor", "contacted", T0, due, T0 + 60 * HOUR, None, 3, False),
        Generated("t", "o", "detractor", "open", T0, due, None, None, None, False),
        Generated(
            "t", "o", "detractor", "closed", T0, due, T0 + 4 * HOUR, T0 + 30 * HOUR, None, False
        ),
    ]
    [answer] = expected(cases, "all").values()
    assert answer == {
        "cases": 4,
        "open": 2,
        "breached": 2,  # one contacted late, one never contacted and past due
        "sla_compliance": 0.5,
        "closed_loop_rate": 0.5,
        "recovery_rate": 0.5,
        "first_contact_p50": 4 * 3600,
        "first_contact_p90": pytest.approx(4 * 3600 + 0.8 * 56 * 3600),
        "resolution_p50": 20 * 3600,
        "resolution_p90": pytest.approx(10 * 3600 + 0.9 * 20 * 3600),
    }


async def test_several_groupings_in_one_pass_answer_as_each_alone(
    sessions: SessionFactory, loaded: None
) -> None:
    """GROUPING SETS: team, owner and all at once give each grouping's own figures, in the
    order asked."""
    async with sessions() as session:
        found = await figures(
            FollowupRepository(session),
            group_by=["team", "owner", "all"],
            start=None,
            end=None,
            now=NOW,
        )
    assert [g.grouping for g in found] == ["team"] * 2 + ["owner"] * 3 + ["all"]
    for grouping in ("team", "owner", "all"):
        got = observed([g for g in found if g.grouping == grouping])
        want = expected(GENERATED, grouping)
        assert set(got) == set(want)
        for group, answer in want.items():
            assert got[group] == pytest.approx(answer), (grouping, group)
