"""Local daily windows (a team's business hours, a customer's delivery and quiet hours) and
the zone a customer is judged in: one rule, for every service that applies them.

followup resolves a customer's zone once (`zone_or`: theirs when the tz database knows it,
else the policy's default) and plans with it; the zone it resolved travels in the command
(`QuietHours.timezone`), so notify judges the very same window in the very same zone when a
delay pushes a send into it. Pure standard library, no I/O."""

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or(name: str | None, fallback: str) -> ZoneInfo:
    """The zone `name` of the tz database; `fallback` when `name` is empty or the database
    does not know it (a customer profile may hold any IANA-looking name)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def inside(moment: time, start: time, end: time) -> bool:
    """Whether a local time of day is inside [start, end); a window whose start is after its
    end crosses midnight (21:00–08:00)."""
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def window_end(now: datetime, zone: tzinfo, start: time, end: time) -> datetime | None:
    """The end (in UTC) of the local window [start, end) that `now` falls in, judged in `zone`;
    None when `now` is outside it."""
    local = now.astimezone(zone)
    at = local.time()
    if not inside(at, start, end):
        return None
    day = local.date() if at < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
