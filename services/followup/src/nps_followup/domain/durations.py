"""Durations as a policy writes them: `30 minutes`, `7d`, `2 business days`, and the rules for
the ones that must be calendar time (how old a response may be, when to ask again)."""

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


class DurationUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    BUSINESS_HOURS = "business hours"
    BUSINESS_DAYS = "business days"


_DURATION = re.compile(
    r"^\s*(\d+)\s*(seconds?|minutes?|hours?|days?|business\s+hours?|business\s+days?|[smhd])\s*$"
)
_SHORT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Duration(BaseModel):
    """`30 minutes`, `1 hour`, `1 day` (calendar time; also written `30m`, `1h`, `7d`) or
    `4 business hours`, `2 business days` (counted in the team's business hours). `seconds`
    exist for tests and demonstrations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(ge=0)
    unit: DurationUnit

    @classmethod
    def parse(cls, text: str) -> "Duration":
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration: write e.g. '30 minutes', '1 hour', '1 day', "
                "'7d', '4 business hours' or '2 business days'"
            )
        unit = _SHORT.get(match.group(2)) or " ".join(match.group(2).split())
        unit = unit if unit.endswith("s") else f"{unit}s"
        return cls(amount=int(match.group(1)), unit=DurationUnit(unit))

    @property
    def is_business(self) -> bool:
        return self.unit in (DurationUnit.BUSINESS_HOURS, DurationUnit.BUSINESS_DAYS)

    def calendar(self) -> timedelta:
        """The calendar length; only for calendar units."""
        match self.unit:
            case DurationUnit.SECONDS:
                return timedelta(seconds=self.amount)
            case DurationUnit.MINUTES:
                return timedelta(minutes=self.amount)
            case DurationUnit.HOURS:
                return timedelta(hours=self.amount)
            case DurationUnit.DAYS:
                return timedelta(days=self.amount)
            case _:
                raise ValueError(f"{self} is counted in business time")

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


def _duration(value: object) -> object:
    return Duration.parse(value) if isinstance(value, str) else value


DurationField = Annotated[Duration, BeforeValidator(_duration)]


def _calendar_only(value: Duration) -> Duration:
    if value.is_business:
        raise ValueError(
            "how old a response may be is calendar time (when the customer answered), "
            "not a team's business hours: write e.g. '7 days' or '7d'"
        )
    return value


#: How old a response may be and still be acted on: calendar time only.
AgeField = Annotated[DurationField, AfterValidator(_calendar_only)]

#: The default of `act_on_responses_within`: a response older than a week is history.
DEFAULT_RESPONSE_WINDOW = Duration(amount=7, unit=DurationUnit.DAYS)

#: What a rule writes to have no re-survey when the policy's `resurvey_after` would give one.
RESURVEY_OFF = "off"


def _resurvey_off(value: object) -> object:
    return None if isinstance(value, str) and value.strip() == RESURVEY_OFF else value


def _resurvey_delay(value: Duration) -> Duration:
    if value.is_business:
        raise ValueError(
            "resurvey_after is calendar time since the case closed (the customer's time, not "
            "a team's business hours): write e.g. '30 days' or '30d'"
        )
    if value.amount == 0:
        raise ValueError(
            "resurvey_after must be longer than nothing (the customer needs time to see a "
            "difference): write e.g. '30 days', or 'off' for no re-survey"
        )
    return value


#: How long after a case closed the customer is asked again: calendar time, or `off`.
ResurveyField = Annotated[
    Annotated[DurationField, AfterValidator(_resurvey_delay)] | None,
    BeforeValidator(_resurvey_off),
]
