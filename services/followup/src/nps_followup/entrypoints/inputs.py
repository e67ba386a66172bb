"""What people send followup's API: request bodies and the typed path and query values the
routes share."""

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field, StringConstraints

from nps_events import ContactOutcome, Line, StaffRecipient, Text

ThemeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
SourceName = Annotated[Line, StringConstraints(min_length=1, max_length=100)]
CustomerId = Annotated[
    Line, Path(min_length=1, max_length=200, description="The customer's id: one line.")
]

#: What a free-text note may hold.
NOTE = "May span lines (tab and line breaks); no other control character."


class AssignIn(BaseModel):
    owner: StaffRecipient | None = Field(
        default=None,
        description="Who owns the case now: exactly one email address (or webhook:<name>); "
        "omit to let the rule choose (account owner, else round-robin in the case's team).",
    )


class ContactIn(BaseModel):
    channel: Line = Field(min_length=1, max_length=20, description="phone, email, meeting…")
    outcome: ContactOutcome = Field(description="`reached` meets the contact deadline.")
    note: Text | None = Field(default=None, max_length=5000, description=NOTE)


class ResolveIn(BaseModel):
    root_cause: Line = Field(min_length=1, max_length=100, description="From the policy's list.")
    note: Text | None = Field(default=None, max_length=5000, description=NOTE)


class CloseIn(BaseModel):
    """Nothing to say: who closes it comes from the token."""


class ReopenIn(BaseModel):
    reason: Text | None = Field(default=None, max_length=2000, description=NOTE)


class OptOutIn(BaseModel):
    reason: Text | None = Field(default=None, max_length=2000, description=NOTE)
