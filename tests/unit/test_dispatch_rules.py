from datetime import UTC, datetime, timedelta

import pytest

from nps_notify.domain.dispatch import (
    CircuitBreaker,
    Decision,
    DispatchState,
    decide,
    fit_sms,
    is_e164,
    quiet_until,
    sms_segments,
    sms_units,
)


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


def test_an_interrupted_send_goes_again_only_where_the_provider_recognises_repeats() -> None:
    assert decide(DispatchState.SENDING, provider_dedupes=True) is Decision.SEND
    assert decide(DispatchState.SENDING, provider_dedupes=False) is Decision.REPORT_UNKNOWN
    assert decide(DispatchState.SENT, provider_dedupes=True) is Decision.ALREADY_DONE


def test_a_deferred_action_is_sent_again() -> None:
    assert decide(DispatchState.DEFERRED) is Decision.SEND


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),  # concatenated: 153 septets each
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # an extension character costs two septets
        ("€" * 81, "gsm7", 2),
        ("ł" * 70, "ucs2", 1),  # one character outside GSM-7 makes it all UCS-2
        ("ł" * 71, "ucs2", 2),  # 67 units per segment
        ("👍" * 35, "ucs2", 1),  # an emoji is two UTF-16 units
    ],
)
def test_sms_segments_are_counted_as_carriers_bill_them(
    text: str, encoding: str, segments: int
) -> None:
    assert sms_units(text)[0] == encoding
    assert sms_segments(text) == segments


@pytest.mark.parametrize("text", ["Thank you! " * 60, "Merci ł " * 60, "short"])
@pytest.mark.parametrize("budget", [1, 2, 3])
def test_a_text_is_cut_to_its_segment_budget_with_an_ellipsis(text: str, budget: int) -> None:
    fitted = fit_sms(text, budget)
    assert sms_segments(fitted) <= budget
    if fitted != text.strip():
        assert fitted.endswith(("...", "…"))
        assert sms_units(fitted)[0] == sms_units(text)[0]  # the cut never changes the encoding


@pytest.mark.parametrize(
    ("number", "valid"),
    [("+33612345678", True), ("+14155550123", True), ("0612345678", False), ("+0123456", False)],
)
def test_numbers_must_be_e164(number: str, valid: bool) -> None:
    assert is_e164(number) is valid


def test_the_circuit_opens_after_repeated_deferrals_and_backs_off_longer_each_time() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    breaker = CircuitBreaker(threshold=3, cooldown=30)
    for _ in range(2):
        breaker.record(deferred=True, now=now)
    assert not breaker.is_open(now)
    breaker.record(deferred=True, now=now)
    assert breaker.is_open(now + timedelta(seconds=29))
    assert not breaker.is_open(now + timedelta(seconds=30))  # the trial
    breaker.record(deferred=True, now=now + timedelta(seconds=30))
    assert breaker.is_open(now + timedelta(seconds=89))  # twice as long
    breaker.record(deferred=False, now=now + timedelta(seconds=90))
    assert not breaker.is_open(now + timedelta(seconds=90))
    assert breaker.failures == 0


PARIS = "Europe/Paris"


@pytest.mark.parametrize(
    ("utc", "until"),
    [
        ("2026-11-25T19:59:00+00:00", None),  # 20:59 in Paris: not yet
        ("2026-11-25T20:00:00+00:00", "2026-11-26T07:00:00+00:00"),  # 21:00: until 08:00
        ("2026-11-26T03:30:00+00:00", "2026-11-26T07:00:00+00:00"),  # 04:30, after midnight
        ("2026-11-26T07:00:00+00:00", None),  # 08:00: the day has begun
        ("2026-07-01T19:30:00+00:00", "2026-07-02T06:00:00+00:00"),  # summer time: UTC+2
    ],
)
def test_quiet_hours_cross_midnight_in_the_customers_zone(utc: str, until: str | None) -> None:
    found = quiet_until(datetime.fromisoformat(utc), timezone=PARIS, start="21:00", end="08:00")
    assert found == (datetime.fromisoformat(until) if until else None)


def test_a_daytime_quiet_window_and_an_unknown_zone() -> None:
    noon = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    assert quiet_until(noon, timezone="Mars/Olympus", start="12:00", end="14:00") == datetime(
        2026, 11, 25, 14, 0, tzinfo=UTC
    )
