"""Public holidays per team, from the `holidays` library (maintained per country and
subdivision), so that nobody keeps a hand-written list."""

from collections.abc import Container
from datetime import date
from functools import cache

import holidays

from nps_followup.domain.cases import HolidaysFor
from nps_followup.domain.policy import Policy

_NONE: frozenset[date] = frozenset()


def unknown_holiday_calendars(policy: Policy) -> list[tuple[tuple[str | int, ...], str]]:
    """Teams whose country (or subdivision) the holidays library does not know."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for name, team in policy.teams.items():
        if team.country is None:
            continue
        try:
            holidays.country_holidays(team.country, subdiv=team.subdivision)
        except NotImplementedError as exc:
            where = "subdivision" if team.subdivision and "subdivision" in str(exc) else "country"
            found.append((("teams", name, where), f"no public holidays known: {exc}"))
    return found


def holidays_for(policy: Policy) -> HolidaysFor:
    """Each team's public holidays: a container of dates, filled in year by year on demand."""

    @cache
    def lookup(team: str) -> Container[date]:
        settings = policy.teams[team]
        if settings.country is None:
            return _NONE
        calendar: Container[date] = holidays.country_holidays(
            settings.country, subdiv=settings.subdivision
        )
        return calendar

    return lookup
