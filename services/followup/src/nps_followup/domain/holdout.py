"""Holdouts: a share of the customers an automated rule would message receives nothing, so
that what the messages do to NPS is measured against customers who got none, not assumed.

Who is held out is decided by a hash of the rule's name and the customer's id: the same
customer is always in or always out of a rule's holdout (across answers, replicas, replays and
restarts), and anyone can recompute the choice. Renaming the rule draws a new holdout."""

import hashlib
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

#: The largest holdout a rule may set: a holdout is a control group beside the customers who
#: get the messages, never the larger part of them.
MAX_HOLDOUT = Decimal(50)

_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _share(value: object) -> object:
    """`10%` (also `2.5%`) as the percentage, a Decimal; anything else is left for pydantic."""
    if isinstance(value, str):
        match = _SHARE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a share: write a percentage, e.g. '10%'")
        try:
            return Decimal(match.group(1))
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise ValueError(f"{value!r} is not a share") from None
    return value


def _in_range(value: Decimal) -> Decimal:
    if not Decimal(0) < value <= MAX_HOLDOUT:
        raise ValueError(
            f"a holdout is more than 0% and at most {MAX_HOLDOUT}% of the customers (got {value}%)"
        )
    return value


#: A holdout share in percent, written `10%` in the policy file.
HoldoutShare = Annotated[Decimal, BeforeValidator(_share), AfterValidator(_in_range)]

_SCALE = 2**64


def draw(rule: str, customer_id: str) -> Decimal:
    """The customer's place in the rule's holdout draw: a number in [0, 100), uniform over
    customers, the same every time for the same rule and customer."""
    digest = hashlib.sha256(f"holdout\x1f{rule}\x1f{customer_id}".encode()).digest()
    return Decimal(int.from_bytes(digest[:8], "big")) * 100 / _SCALE


def is_held_out(rule: str, customer_id: str, share: Decimal) -> bool:
    """Whether the rule's holdout of `share` percent takes this customer: they receive none of
    the rule's messages."""
    return draw(rule, customer_id) < share
