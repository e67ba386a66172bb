"""Followup's case gauges as Prometheus exposes them, from one count of the cases: every
segment with every status a person works, every escalation level, and a group that empties
reading 0 rather than its last count. (The counts' SQL is tested against the domain's rule in
tests/integration/test_followup_breached.py.)"""

from prometheus_client import REGISTRY

from nps_events import Segment
from nps_followup.metrics import set_case_gauges


def active(segment: str, status: str) -> float | None:
    return REGISTRY.get_sample_value("npsloop_cases_active", {"segment": segment, "status": status})


def breached(level: str) -> float | None:
    return REGISTRY.get_sample_value("npsloop_cases_breached", {"level": level})


def test_each_group_reads_its_count_and_the_groups_with_none_read_0() -> None:
    set_case_gauges({("detractor", "open"): 7, ("passive", "contacted"): 2}, {1: 3})

    assert active("detractor", "open") == 7
    assert active("passive", "contacted") == 2
    assert [active(s.value, "contacted") for s in Segment if s is not Segment.PASSIVE] == [0, 0]
    assert [breached(level) for level in ("0", "1", "2")] == [0, 3, 0]


def test_a_group_that_empties_reads_0_not_its_last_count() -> None:
    set_case_gauges({("promoter", "open"): 4}, {2: 5})

    set_case_gauges({}, {})

    assert active("promoter", "open") == 0
    assert breached("2") == 0


def test_statuses_nobody_works_any_more_have_no_gauge() -> None:
    set_case_gauges({("detractor", "resolved"): 9, ("detractor", "closed"): 9}, {})

    assert active("detractor", "resolved") is None
    assert active("detractor", "closed") is None
