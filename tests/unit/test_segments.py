import pytest

from nps_events import Segment
from nps_scoring.domain.segments import net_promoter_score, segment_of


@pytest.mark.parametrize(
    ("score", "segment"),
    [
        (0, Segment.DETRACTOR),
        (6, Segment.DETRACTOR),
        (7, Segment.PASSIVE),
        (8, Segment.PASSIVE),
        (9, Segment.PROMOTER),
        (10, Segment.PROMOTER),
    ],
)
def test_score_falls_in_its_nps_segment(score: int, segment: Segment) -> None:
    assert segment_of(score) is segment


@pytest.mark.parametrize("score", [-1, 11])
def test_score_outside_0_to_10_is_refused(score: int) -> None:
    with pytest.raises(ValueError, match="0 to 10"):
        segment_of(score)


@pytest.mark.parametrize(
    ("promoters", "passives", "detractors", "nps"),
    [
        (0, 0, 0, None),
        (1, 0, 0, 100.0),
        (0, 0, 3, -100.0),
        (5, 3, 2, 30.0),
        (1, 1, 1, 0.0),
    ],
)
def test_nps_is_percent_promoters_minus_percent_detractors(
    promoters: int, passives: int, detractors: int, nps: float | None
) -> None:
    assert net_promoter_score(promoters, passives, detractors) == nps
