"""The contact rules: who may be messaged, when, and in which zone. The do-not-contact list,
the frequency cap, consent and addresses hold a message back; delivery and quiet hours move
it, on the customer's own clock."""

from datetime import datetime
from typing import NamedTuple


class DoNotContactEntry(NamedTuple):
    """One scope (a channel, or `all`) a customer is on the do-not-contact list for."""

    scope: str
    #: Who put them there: `api` (a person), or the provider that reported the opt-out.
    source: str
    reason: str | None
    at: datetime
