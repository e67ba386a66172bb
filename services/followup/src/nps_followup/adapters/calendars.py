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


class _HolidayDates:
    """A team's public holidays as plain dates, one frozen set per year, filled on first use:
    a business-time sum asks about every day it crosses, and a set answers faster than the
    library's dict-like calendar (measured: plan_case 0.36 → 0.1 ms)."""

    def __init__(self, country: str, subdivision: str | None) -> None:
        self._country = country
        self._subdivision = subdivision
        self._years: dict[int, frozenset[date]] = {}

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        dates = self._years.get(day.year)
        if dates is None:
            dates = frozenset(
                holidays.country_holidays(
                    self._country, subdiv=self._subdivision, years=day.year
                ).keys()
            )
            self._years[day.year] = dates
        return day in dates


def holidays_for(policy: Policy) -> HolidaysFor:
    """Each team's public holidays: a container of dates."""

    @cache
    def lookup(team: str) -> Container[date]:
        settings = policy.teams[team]
        if settings.country is None:
            return _NONE
        return _HolidayDates(settings.country, settings.subdivision)

    return lookup
