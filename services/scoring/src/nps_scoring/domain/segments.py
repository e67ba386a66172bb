from nps_events import Segment


def segment_of(score: int) -> Segment:
    """Promoter 9–10, passive 7–8, detractor 0–6."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, not {score}")
    if score >= 9:
        return Segment.PROMOTER
    if score >= 7:
        return Segment.PASSIVE
    return Segment.DETRACTOR


def net_promoter_score(promoters: int, passives: int, detractors: int) -> float | None:
    """% promoters − % detractors, −100 to 100; None when there are no responses."""
    total = promoters + passives + detractors
    if total == 0:
        return None
    return 100.0 * (promoters - detractors) / total
