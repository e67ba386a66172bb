"""Scoring's consumers in one process (`SCORING_CONSUMERS`): members of one consumer group, so
the broker splits the partitions between them and no partition is handled twice at once."""

from nps_scoring.bootstrap import build
from nps_scoring.config import ScoringSettings


async def test_each_configured_consumer_joins_the_one_scoring_group() -> None:
    one = build(ScoringSettings()).infra.consumers
    three = build(ScoringSettings(consumers=3, consumer_group="scoring-x")).infra.consumers
    assert [c.group_id for c in one] == ["npsloop-scoring"]
    assert [c.group_id for c in three] == ["scoring-x"] * 3
    assert len({id(c) for c in three}) == 3
