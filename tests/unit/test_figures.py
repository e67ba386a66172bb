"""NPS, its margin of error and the significance of a change, against hand-computed values;
and the buckets a response counts in."""

import math
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nps_events import Segment
from nps_scoring.domain.figures import (
    BucketKey,
    Counted,
    Counts,
    Grain,
    buckets_of,
    compare,
    count,
    count_days,
    new_day_deltas,
    new_deltas,
    period_start,
    rolled_up,
)


@pytest.mark.parametrize(
    ("counts", "nps", "moe"),
    [
        # p = .5, d = .2: NPS 30; var = (.7 − .09)/100 = .0061; MoE = z·√.0061·100 with z = 1.95996
        pytest.param(Counts(50, 30, 20), 30.0, 15.3078, id="50/30/20"),
        # p = d = .5: NPS 0; var = (1 − 0)/4 = .25; MoE = 1.96·.5·100
        pytest.param(Counts(2, 0, 2), 0.0, 97.9982, id="half promoters half detractors"),
        # p = .1, d = .6: NPS −50; var = (.7 − .25)/1000 = .00045
        pytest.param(Counts(100, 300, 600), -50.0, 4.1577, id="1000 responses"),
        pytest.param(Counts(0, 0, 0), None, None, id="no responses: nothing to say"),
        pytest.param(Counts(1, 0, 0), 100.0, None, id="one response: no margin"),
        pytest.param(Counts(0, 0, 1), -100.0, None, id="one detractor: no margin"),
        # var = (1 + 0 − 1)/n = 0: the formula sees no spread
        pytest.param(Counts(40, 0, 0), 100.0, 0.0, id="all promoters: margin 0"),
        pytest.param(Counts(0, 7, 0), 0.0, 0.0, id="all passives: margin 0"),
    ],
)
def test_nps_and_margin_of_error_match_hand_computed_values(
    counts: Counts, nps: float | None, moe: float | None
) -> None:
    assert counts.nps == (None if nps is None else pytest.approx(nps))
    if moe is None:
        assert counts.margin_of_error is None
    else:
        assert counts.margin_of_error == pytest.approx(moe, abs=1e-4)


def test_significant_change_between_two_periods() -> None:
    # a: 200 responses, 100 P / 60 N / 40 D → NPS 30, var = (.7 − .09)/200 = .00305
    # b: 250 responses, 175 P / 50 N / 25 D → NPS 60, var = (.8 − .36)/250 = .00176
    # SE = √(.00481)·100 = 6.9354 points; z = 30/6.9354 = 4.3256; p = erfc(z/√2) ≈ 1.5e-5
    result = compare(Counts(100, 60, 40), Counts(175, 50, 25))
    assert result.difference == pytest.approx(30.0)
    assert result.standard_error == pytest.approx(6.9354, abs=1e-4)
    assert result.z == pytest.approx(4.3256, abs=1e-4)
    assert result.p_value == pytest.approx(math.erfc(4.3256 / math.sqrt(2)), rel=1e-3)
    assert result.significant is True


def test_a_change_within_the_noise_is_not_significant() -> None:
    # a: NPS 30 (var .00305, n 200); b: 250 responses 150 P / 50 N / 50 D → NPS 40,
    # var = (.8 − .16)/250 = .00256; SE = √.00561·100 = 7.4900; z = 10/7.4900 = 1.3351 < 1.96;
    # p = erfc(1.3351/√2) = 0.1818
    result = compare(Counts(100, 60, 40), Counts(150, 50, 50))
    assert result.standard_error == pytest.approx(7.4900, abs=1e-4)
    assert result.z == pytest.approx(1.3351, abs=1e-4)
    assert result.p_value == pytest.approx(0.1818, abs=1e-4)
    assert result.significant is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(Counts(), Counts(5, 0, 5), id="no responses in a"),
        pytest.param(Counts(1, 0, 0), Counts(5, 0, 5), id="one response in a"),
        pytest.param(Counts(5, 0, 0), Counts(9, 0, 0), id="no spread in either"),
    ],
)
def test_significance_is_undefined_without_enough_data(a: Counts, b: Counts) -> None:
    assert compare(a, b).significant is None


@pytest.mark.parametrize(
    ("day", "grain", "start"),
    [
        (date(2026, 3, 4), Grain.DAY, date(2026, 3, 4)),
        (date(2026, 3, 4), Grain.WEEK, date(2026, 3, 2)),  # a Wednesday → its Monday
        (date(2026, 3, 1), Grain.WEEK, date(2026, 2, 23)),  # a Sunday → the Monday before
        (date(2026, 3, 31), Grain.MONTH, date(2026, 3, 1)),
    ],
)
def test_period_start(day: date, grain: Grain, start: date) -> None:
    assert period_start(day, grain) == start


def _counted(themes: tuple[str, ...] | None, at: datetime) -> Counted:
    return Counted(Segment.DETRACTOR, at, "web", "s-1", themes, {"plan": "pro"})


def test_a_response_counts_once_per_grain_in_each_of_its_buckets() -> None:
    at = datetime(2026, 3, 4, 10, tzinfo=UTC)
    keys = {(k.dimension, k.value) for k in buckets_of(_counted(("price", "support"), at), UTC)}
    assert keys == {
        ("all", ""),
        ("source", "web"),
        ("survey", "s-1"),
        ("theme", "price"),
        ("theme", "support"),
        ("attribute:plan", "pro"),
    }
    assert len(buckets_of(_counted(("price",), at), UTC)) == 3 * 5


@pytest.mark.parametrize(
    ("themes", "bucket"),
    [(None, "no_comment"), ((), "unmatched"), (("price",), "price")],
)
def test_comments_without_themes_are_counted_as_such(
    themes: tuple[str, ...] | None, bucket: str
) -> None:
    keys = buckets_of(_counted(themes, datetime(2026, 3, 4, tzinfo=UTC)), UTC)
    assert [k.value for k in keys if k.dimension == "theme" and k.grain == "day"] == [bucket]


def test_the_figures_time_zone_decides_the_day() -> None:
    late_evening_in_new_york = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)
    day = BucketKey("day", "all", "", date(2026, 3, 4))
    assert day in buckets_of(_counted(None, late_evening_in_new_york), ZoneInfo("America/New_York"))
    assert day not in buckets_of(_counted(None, late_evening_in_new_york), UTC)


def test_an_update_moves_a_response_between_buckets() -> None:
    at = datetime(2026, 3, 4, tzinfo=UTC)
    before = _counted(("price",), at)
    after = Counted(Segment.PROMOTER, at, "web", "s-1", ("support",), {"plan": "pro"})
    deltas = new_deltas()
    count(deltas, before, UTC, sign=-1)
    count(deltas, after, UTC)
    day_all = deltas[BucketKey("day", "all", "", date(2026, 3, 4))]
    assert day_all == [1, 0, -1]
    assert deltas[BucketKey("day", "theme", "price", date(2026, 3, 4))] == [0, 0, -1]
    assert deltas[BucketKey("day", "theme", "support", date(2026, 3, 4))] == [1, 0, 0]


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_counting_by_day_then_rolling_up_gives_every_buckets_count(tz: str) -> None:
    """What scoring stores (`count_days`, then `rolled_up` once per batch) is what counting
    each response in every grain's buckets gives (`count`): additions and removals, responses
    over months and across week and month ends, with and without themes and attributes."""
    zone = ZoneInfo(tz)
    rng = random.Random(20)
    start = datetime(2025, 12, 20, tzinfo=UTC)
    responses = [
        Counted(
            rng.choice(list(Segment)),
            start + timedelta(hours=rng.randint(0, 24 * 70), minutes=rng.randint(0, 59)),
            rng.choice(["web", "app"]),
            f"s-{rng.randint(1, 3)}",
            rng.choice([None, (), ("price",), ("support", "price"), ("price", "price")]),
            rng.choice([{}, {"plan": "pro"}, {"plan": "free", "region": "eu"}]),
        )
        for _ in range(400)
    ]
    signs = [rng.choice([1, 1, -1]) for _ in responses]
    every = new_deltas()
    days = new_day_deltas()
    for response, sign in zip(responses, signs, strict=True):
        count(every, response, zone, sign=sign)
        count_days(days, response, zone, sign=sign)
    rolled = rolled_up(days)
    assert {k: v for k, v in rolled.items() if any(v)} == {k: v for k, v in every.items() if any(v)}
    assert sum(1 for v in every.values() if any(v)) > 500  # the case is not trivial
