"""Impact figures on constructed answer pairs whose answers are computed here by hand: what
counts as done between two answers, the NPS change per group with its 95% margin (the spread
of each customer's own difference), and the flag that keeps a small or unclear sample from
being read as proof."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nps_events import Segment
from nps_followup.domain.impact import (
    AnswerPair,
    Done,
    against_holdout,
    history_pairs,
    impact,
    what_was_done,
)

D, PA, PR = Segment.DETRACTOR, Segment.PASSIVE, Segment.PROMOTER
T0 = datetime(2026, 9, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)
LATER = T0 + 30 * DAY  # when the next answer came


def pair(
    customer: str, before: Segment, after: Segment, *, at: datetime = T0, **recorded: Any
) -> AnswerPair:
    return AnswerPair(
        customer_id=customer,
        earlier_segment=before,
        later_segment=after,
        earlier_at=at,
        later_at=at + 30 * DAY,
        **recorded,
    )


def contacted(customer: str, after: Segment, *, late: bool = False) -> AnswerPair:
    """A detractor whose case a person worked: reached a day before or after the deadline."""
    due = T0 + 2 * DAY
    return pair(
        customer,
        D,
        after,
        has_case=True,
        due_at=due,
        first_contact_at=due + (DAY if late else -DAY),
    )


def messaged(customer: str, before: Segment, after: Segment) -> AnswerPair:
    return pair(customer, before, after, has_case=True, message_sent_at=T0 + DAY)


def held_out(customer: str, before: Segment, after: Segment) -> AnswerPair:
    return pair(customer, before, after, set_aside="holdout")


@pytest.mark.parametrize(
    ("recorded", "done"),
    [
        ({"has_case": True, "due_at": T0 + 2 * DAY, "first_contact_at": T0 + DAY}, "within"),
        ({"has_case": True, "due_at": T0 + 2 * DAY, "first_contact_at": T0 + 2 * DAY}, "within"),
        ({"has_case": True, "due_at": T0 + 2 * DAY, "first_contact_at": T0 + 3 * DAY}, "late"),
        # Reached only after the customer answered again: nothing was done in between.
        ({"has_case": True, "due_at": T0 + 2 * DAY, "first_contact_at": LATER + DAY}, "not"),
        ({"has_case": True, "due_at": T0 + 2 * DAY}, "not"),
        ({"has_case": True, "message_sent_at": T0 + DAY}, "automated"),
        ({"has_case": True, "message_sent_at": LATER + DAY}, "not"),  # sent after the answer
        ({"has_case": True}, "not"),  # an automated case whose message was held back
        ({}, "not"),  # no rule applied
        ({"set_aside": "holdout"}, "held"),
        # Held out, then revised to a detractor whose rule opened a case: the case counts.
        ({"set_aside": "holdout", "has_case": True, "due_at": T0 + 2 * DAY}, "not"),
        ({"set_aside": "backfill"}, None),  # history: what was done then is not known
        ({"set_aside": "older_than_window"}, None),
        ({"backfill": True}, None),  # history no rule applied to
    ],
)
def test_what_was_done_between_two_answers(recorded: dict[str, Any], done: str | None) -> None:
    expected = {
        "within": Done.CONTACTED_WITHIN_SLA,
        "late": Done.CONTACTED_LATE,
        "not": Done.NOT_CONTACTED,
        "automated": Done.AUTOMATED_MESSAGE_ONLY,
        "held": Done.HELD_OUT,
        None: None,
    }[done]
    assert what_was_done(pair("c", D, PR, **recorded)) == expected


def test_a_small_group_by_hand_is_shown_but_never_as_proof() -> None:
    # Four detractors reached in time answer: promoter, promoter, passive, detractor.
    pairs = [contacted("a", PR), contacted("b", PR), contacted("c", PA), contacted("d", D)]

    [group] = impact(pairs)

    # Indicators after: +1 +1 0 -1, so NPS 25 (before: -100). Differences 2 2 1 0, mean 1.25:
    # +125 points. Deviations .75 .75 -.25 -1.25: variance 2.75/3, standard error √(v/4).
    se = 100 * math.sqrt((2 * 0.75**2 + 0.25**2 + 1.25**2) / 3 / 4)
    assert (group.segment, group.done) == (D, Done.CONTACTED_WITHIN_SLA)
    assert (group.nps_before, group.nps_after) == (-100, 25)
    assert group.estimate.customers == 4
    assert group.estimate.change == pytest.approx(125)
    assert group.estimate.margin == pytest.approx(1.96 * se)
    assert group.estimate.margin == pytest.approx(93.83, abs=0.01)
    # The normal approximation runs past +200 (everyone from detractor to promoter): the
    # interval stops there.
    assert group.estimate.low == pytest.approx(125 - 93.83, abs=0.01)
    assert group.estimate.high == 200
    assert group.estimate.conclusive is False
    assert group.estimate.reason is not None
    assert group.estimate.reason.startswith("too few customers: 4, fewer than 30")


def test_forty_reached_detractors_by_hand_show_a_conclusive_rise() -> None:
    pairs = (
        [contacted(f"p{i}", PR) for i in range(20)]
        + [contacted(f"n{i}", PA) for i in range(10)]
        + [contacted(f"d{i}", D) for i in range(10)]
    )

    [group] = impact(pairs)

    # Differences: 2 (20 of them), 1 (10), 0 (10): mean 50/40 = 1.25 (+125 points);
    # NPS after: (20 - 10)/40.
    # Deviations .75 (20), -.25 (10), -1.25 (10): variance 27.5/39 = 0.7051.
    se = 100 * math.sqrt((20 * 0.75**2 + 10 * 0.25**2 + 10 * 1.25**2) / 39 / 40)
    assert (group.nps_before, group.nps_after) == (-100, 25)
    assert group.estimate.change == pytest.approx(125)
    assert group.estimate.standard_error == pytest.approx(se)
    assert group.estimate.margin == pytest.approx(26.02, abs=0.01)
    assert group.estimate.low == pytest.approx(125 - 26.023, abs=0.001)
    assert group.estimate.high == pytest.approx(125 + 26.023, abs=0.001)
    assert (group.estimate.conclusive, group.estimate.reason) == (True, None)


def test_an_interval_across_zero_is_not_conclusive_however_many_customers() -> None:
    # Thirty passives messaged: 8 now promoters, 7 detractors, 15 still passives.
    pairs = (
        [messaged(f"p{i}", PA, PR) for i in range(8)]
        + [messaged(f"d{i}", PA, D) for i in range(7)]
        + [messaged(f"s{i}", PA, PA) for i in range(15)]
    )

    [group] = impact(pairs)

    # Mean difference 1/30: +3.33 points; variance (8·(29/30)² + 7·(31/30)² + 15·(1/30)²)/29
    # = 0.5161; standard error 13.12, margin 25.71: -22.4 to +29.0.
    assert (group.segment, group.done) == (PA, Done.AUTOMATED_MESSAGE_ONLY)
    assert group.estimate.change == pytest.approx(100 / 30)
    assert group.estimate.margin == pytest.approx(25.71, abs=0.01)
    assert group.estimate.conclusive is False
    assert group.estimate.reason == (
        "the 95% interval of the change, -22.4 to +29.0 points, includes zero"
    )


def test_one_customer_has_no_margin() -> None:
    [group] = impact([held_out("a", PA, PR)])
    assert (group.estimate.change, group.estimate.margin, group.estimate.conclusive) == (
        100,
        None,
        False,
    )


def test_a_customer_counts_once_per_group_with_their_first_pair_and_history_is_left_out() -> None:
    pairs = [
        contacted("a", PR),
        pair(
            "a",
            D,
            D,
            at=T0 + 40 * DAY,
            has_case=True,
            due_at=T0 + 42 * DAY,
            first_contact_at=T0 + 41 * DAY,
        ),
        contacted("b", D, late=True),
        pair("c", D, PR, set_aside="backfill"),
    ]

    groups = impact(pairs)

    assert [(g.done, g.estimate.customers, g.estimate.change) for g in groups] == [
        (Done.CONTACTED_WITHIN_SLA, 1, 200),  # a's first pair only: detractor → promoter
        (Done.CONTACTED_LATE, 1, 0),
    ]
    assert history_pairs(pairs) == 1


def test_the_messages_effect_against_the_holdout_by_hand() -> None:
    # Passives messaged: 16 of 40 become promoters (+40 points); held out: 3 of 30 (+10).
    pairs = [messaged(f"m{i}", PA, PR if i < 16 else PA) for i in range(40)] + [
        held_out(f"h{i}", PA, PR if i < 3 else PA) for i in range(30)
    ]

    groups = impact(pairs)
    [comparison] = against_holdout(groups)

    # Standard errors: √((16·.6² + 24·.4²)/39/40) and √((3·.9² + 27·.1²)/29/30), in points;
    # the difference's is √(se₁² + se₂²) = 9.62, its margin 18.86: +30 is 11.1 to 48.9.
    se_messaged = 100 * math.sqrt((16 * 0.6**2 + 24 * 0.4**2) / 39 / 40)
    se_held = 100 * math.sqrt((3 * 0.9**2 + 27 * 0.1**2) / 29 / 30)
    assert [g.done for g in groups] == [Done.AUTOMATED_MESSAGE_ONLY, Done.HELD_OUT]
    assert [g.estimate.change for g in groups] == pytest.approx([40, 10])
    assert comparison.segment is PA
    assert (comparison.messaged, comparison.held_out) == (40, 30)
    assert comparison.effect.change == pytest.approx(30)
    assert comparison.effect.margin == pytest.approx(1.96 * math.hypot(se_messaged, se_held))
    assert comparison.effect.margin == pytest.approx(18.86, abs=0.01)
    assert comparison.effect.conclusive is True


def test_a_holdout_too_small_makes_the_comparison_inconclusive() -> None:
    pairs = [messaged(f"m{i}", PA, PR) for i in range(40)] + [
        held_out(f"h{i}", PA, PA) for i in range(5)
    ]
    [comparison] = against_holdout(impact(pairs))
    assert comparison.effect.conclusive is False
    assert comparison.effect.reason is not None
    assert comparison.effect.reason.startswith("too few customers: 5")
