"""The chaos suite, short version: while responses flow through the four running services,
PostgreSQL crashes for 10 s, the broker freezes for 15 s, each service is SIGKILLed, and 1% of
the records on nps.responses.v1 are poison. Counted from the outside (tests/support/chaos.py):
every detractor has exactly one case, no email or ticket arrives twice, nothing but the poison
reaches a dead-letter topic, and every poison record does, with its reason.

The full table (2-minute outages, larger runs, recovery times) comes from `bench/chaos.py`
and is in docs/reliability.md; timing goals live there, not here."""

import pytest

from tests.e2e.conftest import System
from tests.support import chaos
from tests.support.fake_zendesk import FakeZendesk


@pytest.fixture
def target(system: System, zendesk: tuple[FakeZendesk, str]) -> chaos.Target:
    return system.chaos_target(zendesk[0])


def _nothing_lost_nothing_twice(report: chaos.Report) -> None:
    assert report.accepted == report.responses - report.poison, report
    assert report.recovery_seconds is not None, f"never caught up: {report}"
    assert report.without_case == 0, report
    assert report.duplicate_cases == 0, report
    assert report.duplicate_emails == 0, report
    assert report.duplicate_tickets == 0, report
    assert report.other_dlq == 0, f"something other than poison was dead-lettered: {report}"
    assert report.poison_in_dlq == report.poison, report


def _outage(system: System, which: str) -> tuple[str, chaos.Fault]:
    if which == "database":
        assert system.infra.postgres is not None
        return "PostgreSQL killed for 10 s", chaos.database_outage(system.infra.postgres, 10)
    assert system.infra.broker is not None
    return "broker frozen for 15 s", chaos.broker_pause(system.infra.broker, 15)


@pytest.mark.parametrize("which", ["database", "broker"])
async def test_an_infrastructure_outage_loses_nothing_and_leaves_nothing_unknown(
    system: System, target: chaos.Target, which: str
) -> None:
    name, fault = _outage(system, which)
    report = await chaos.run(target, fault, name=name, responses=120, rate=12)
    _nothing_lost_nothing_twice(report)
    # Nothing was killed mid-send: every email and ticket is accounted for as sent.
    assert report.unknown == 0, report
    assert report.emails == report.detractors, report
    assert report.tickets == report.detractors, report


async def test_each_service_killed_in_turn_loses_nothing_and_sends_nothing_twice(
    system: System, target: chaos.Target
) -> None:
    report = await chaos.run(
        target,
        chaos.kill_each(system.services, every=2),
        name="each service SIGKILLed in turn",
        responses=200,
        rate=10,
    )
    _nothing_lost_nothing_twice(report)
    # An email or SMS cut off between the provider taking it and the ledger recording it is
    # reported `unknown` and never resent (docs/notify.md); notify sends 8 at a time.
    assert report.unknown <= 8, report
    assert report.emails + report.unknown >= report.detractors, report


async def test_poison_records_go_to_the_dlq_with_their_reason_and_the_rest_flows(
    target: chaos.Target,
) -> None:
    report = await chaos.run(
        target, chaos.no_fault(), name="1% poison records", responses=300, rate=30, poison_every=100
    )
    _nothing_lost_nothing_twice(report)
    assert report.poison == 3
    assert report.unknown == 0, report
    reasons = "\n".join(report.poison_reasons)
    assert "nul-byte: " in reasons, reasons
    assert "oversized: undecodable: invalid" in reasons, reasons
    assert "wrong-type: undecodable: invalid" in reasons, reasons
