"""`nps-followup policy simulate` on the real database: the consumer keeps a record of every
scored response, the replay of the policy in force agrees with what the consumer really did,
the report's figures are the hand-computed ones, and a run writes nothing (every followup
table's row count and the SMTP sink unchanged; the transaction itself refuses writes)."""

import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from nps_events import Customer, ResponseScored, Segment
from nps_followup import bootstrap
from nps_followup.adapters import tables
from nps_followup.adapters.policy_file import default_policy_text
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.config import FollowupSettings
from nps_followup.domain.simulation import StoredResponse
from nps_followup.entrypoints.simulation import to_table
from nps_followup.handlers import apply_policy
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.settings import DatabaseSettings
from tests.integration.kafka_helpers import NOW, a_response
from tests.integration.test_service_handlers import POLICY
from tests.support.infra import Infra

DAY = NOW.date()  # a Tuesday
#: The shipped default without its promoter rule.
NO_PROMOTER_RULE = default_policy_text().split("  - name: promoter")[0] + (
    "\nact_on_responses_within: 7 days\n"
)


def _scored(customer: str, score: int, *, backfill: bool = False) -> ResponseScored:
    response = a_response(customer_id=customer, score=score)
    return ResponseScored(
        response_id=response.response_id,
        source=response.source,
        survey_id=response.survey_id,
        customer=Customer(id=customer, email=f"{customer}@example.com", attributes={"plan": "x"}),
        score=score,
        segment=Segment.DETRACTOR
        if score <= 6
        else Segment.PASSIVE
        if score <= 8
        else Segment.PROMOTER,
        comment=None,
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=response.event_id(),
        backfill=backfill,
    )


@pytest.fixture(scope="module")
async def seeded(sessions: SessionFactory) -> list[ResponseScored]:
    """Three detractors, two passives, a promoter and an imported detractor, consumed at NOW
    by the real handler (the module's database is its own: nothing else is in it)."""
    responses = [
        *(_scored(f"sim-d{i}", 2) for i in range(3)),
        *(_scored(f"sim-p{i}", 7) for i in range(2)),
        _scored("sim-promoter", 10),
        _scored("sim-history", 1, backfill=True),
    ]
    async with unit_of_work(sessions) as session:
        await apply_policy(FollowupRepository(session), responses, now=NOW, policy=POLICY)
    return responses


async def _row_counts(sessions: SessionFactory) -> dict[str, int]:
    async with sessions() as session:
        return {
            t.name: int(await session.scalar(select(func.count()).select_from(t)) or 0)
            for t in tables.metadata.sorted_tables
        }


def _settings(database_url: str) -> FollowupSettings:
    return FollowupSettings(database=DatabaseSettings(url=SecretStr(database_url)))


async def test_the_consumer_keeps_a_record_of_every_scored_response_without_pii(
    sessions: SessionFactory, seeded: list[ResponseScored]
) -> None:
    async with sessions() as session:
        stored = await FollowupRepository(session).scored_between(NOW, NOW + timedelta(days=1))
    assert {s.response_id for s in stored} == {r.response_id for r in seeded}
    history = next(s for s in stored if s.customer_id == "sim-history")
    assert (history.backfill, history.has_email, history.has_phone) == (True, True, False)
    assert history.attributes == {"plan": "x"}
    assert not hasattr(history, "email")


async def test_a_later_revision_replaces_the_record_and_an_earlier_one_does_not(
    sessions: SessionFactory,
) -> None:
    first = _scored("sim-revised", 3)
    second = first.model_copy(update={"revision": 2, "score": 9, "segment": Segment.PROMOTER})
    for batch in ([first], [second], [first]):  # the first redelivered after the update
        async with unit_of_work(sessions) as session:
            await FollowupRepository(session).record_scored(
                [StoredResponse.of(r, received_at=NOW) for r in batch]
            )
    async with sessions() as session:
        row = (
            await session.execute(
                select(tables.scored_responses).where(
                    tables.scored_responses.c.response_id == first.response_id
                )
            )
        ).one()
    assert (row.revision, row.score, row.segment) == (2, 9, "promoter")
    async with unit_of_work(sessions) as session:
        await session.execute(
            tables.scored_responses.delete().where(
                tables.scored_responses.c.response_id == first.response_id
            )
        )


async def test_simulate_reports_the_hand_computed_figures_and_writes_nothing(
    sessions: SessionFactory,
    seeded: list[ResponseScored],
    database_url: str,
    infra: Infra,
    tmp_path: Path,
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(NO_PROMOTER_RULE)
    counts, mail = await _row_counts(sessions), len(infra.mail.messages())

    result = await bootstrap.simulate(_settings(database_url), proposed, start=DAY, end=DAY)

    assert await _row_counts(sessions) == counts
    assert len(infra.mail.messages()) == mail
    assert counts["scored_responses"] == len(seeded)
    in_force, new = result.in_force, result.proposed
    # Under the policy in force, what the consumer really did at NOW: three cases for people
    # (round-robin alex, sam, alex), three automated ones, the imported answer set aside.
    async with sessions() as session:
        real = dict(
            (
                await session.execute(
                    select(tables.cases.c.team, func.count()).group_by(tables.cases.c.team)
                )
            ).all()
        )
    assert real == {"customer-success": 3, None: 3}
    assert in_force.cases_per_team == {"customer-success": 3, "(automated)": 3}
    assert in_force.not_acted_on == {"backfill": 1}
    assert in_force.messages == {
        ("email", "detractor_acknowledgement"): 3,
        ("ticket", "high"): 3,
        ("email", "passive_education"): 2,
        ("email", "promoter_thank_you"): 1,
    }
    thursday = DAY + timedelta(days=2)  # 2 business days after Tuesday
    assert in_force.deadlines == {
        "alex@example.com": {thursday: 2},
        "sam@example.com": {thursday: 1},
    }
    # Without the promoter rule: one automated case and one thank-you fewer.
    assert new.cases_per_team == {"customer-success": 3, "(automated)": 2}
    assert ("email", "promoter_thank_you") not in new.messages
    assert (new.no_rule, in_force.no_rule) == (1, 0)
    table = to_table(result)
    assert "Nothing was written or sent." in table
    assert "email promoter_thank_you" in table


def test_simulate_is_a_command_with_a_json_report(
    seeded: list[ResponseScored], database_url: str, tmp_path: Path
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(NO_PROMOTER_RULE)
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("FOLLOWUP_POLICY_FILE", None)
    command = [sys.executable, "-m", "nps_followup", "policy", "simulate", "--policy"]
    period = ["--from", DAY.isoformat(), "--to", DAY.isoformat()]
    out = subprocess.run(
        [*command, str(proposed), *period, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    teams = report["sections"]["cases per team"]
    assert teams["(automated)"] == {"proposed": 2, "in_force": 3, "difference": -1}
    assert report["sections"]["messages per channel and template"]["email promoter_thank_you"] == {
        "proposed": 0,
        "in_force": 1,
        "difference": -1,
    }
    assert (report["from"], report["to"]) == (DAY.isoformat(), DAY.isoformat())


async def test_the_replay_transaction_refuses_writes(sessions: SessionFactory) -> None:
    async def write_after_read_only() -> None:
        async with unit_of_work(sessions) as session:
            repo = FollowupRepository(session)
            await repo.read_only()
            await repo.add_opt_out(
                f"sim-{uuid.uuid4().hex[:6]}", "all", source="test", reason=None, at=NOW
            )

    with pytest.raises(DBAPIError, match="read-only transaction"):
        await write_after_read_only()


async def test_an_empty_period_reports_nothing(
    seeded: list[ResponseScored], database_url: str, tmp_path: Path
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(NO_PROMOTER_RULE)
    empty = date(2020, 1, 1)
    result = await bootstrap.simulate(_settings(database_url), proposed, start=empty, end=empty)
    assert result.proposed.responses == result.in_force.responses == 0
    assert "(none)" in to_table(result)
