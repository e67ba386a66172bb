"""Topic names. Each carries a major version; a breaking change is a new topic."""

from enum import StrEnum


class Topic(StrEnum):
    RESPONSES = "nps.responses.v1"
    SCORED = "nps.scored.v1"
    CASES = "nps.cases.v1"
    ACTIONS = "nps.actions.v1"
    ACTION_RESULTS = "nps.action-results.v1"


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`: the original bytes and headers plus the error."""
    return f"{topic}.dlq"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic) + tuple(dlq(t.value) for t in Topic)
