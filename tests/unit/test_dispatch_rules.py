import pytest

from nps_notify.domain.dispatch import Decision, DispatchState, decide


@pytest.mark.parametrize(
    ("previous", "decision"),
    [
        (None, Decision.SEND),
        (DispatchState.SENDING, Decision.REPORT_UNKNOWN),
        (DispatchState.SENT, Decision.ALREADY_DONE),
        (DispatchState.FAILED, Decision.ALREADY_DONE),
        (DispatchState.UNKNOWN, Decision.ALREADY_DONE),
    ],
)
def test_an_action_is_sent_at_most_once(previous: DispatchState | None, decision: Decision) -> None:
    assert decide(previous) is decision
