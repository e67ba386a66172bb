"""The customer's time now, from the time zone they gave, so that an agent calls at a decent
hour. Pure: `now` is passed in."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True, slots=True)
class LocalTime:
    zone: str
    #: e.g. `Tue 21:05`.
    clock: str
    #: e.g. `UTC+09:00`.
    offset: str
    #: Outside 08:00–21:00 there: the page says it is a bad time to call.
    night: bool


def local_time(zone: str | None, now: datetime) -> LocalTime | None:
    """The customer's local time, or None without a time zone or with one nobody knows."""
    if not zone:
        return None
    try:
        there = now.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    offset = there.strftime("%z")
    return LocalTime(
        zone=zone,
        clock=there.strftime("%a %H:%M"),
        offset=f"UTC{offset[:3]}:{offset[3:]}",
        night=not 8 <= there.hour < 21,
    )
