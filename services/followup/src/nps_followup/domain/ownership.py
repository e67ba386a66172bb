"""Who owns a new case: the customer's account owner when the source names one a notice can
reach, else the team's member whose round-robin turn it is."""

from nps_events.text import is_staff_recipient
from nps_followup.domain.policy import OwnerRule


def account_owner(attributes: dict[str, str]) -> str | None:
    """The customer's `account_owner` attribute when it names someone a notice can reach (one
    email address, or webhook:<name>); None otherwise. A source may send anything there, and
    an owner who cannot be told of a case is no owner: the rule's round-robin applies."""
    owner = attributes.get("account_owner")
    return owner if owner and is_staff_recipient(owner) else None


def takes_turn(rule: OwnerRule | None, attributes: dict[str, str]) -> bool:
    """Whether a new case under `rule` takes its team's next round-robin turn: not when nobody
    is assigned, nor when the customer's account owner gets it."""
    if rule is None or rule is OwnerRule.UNASSIGNED:
        return False
    return not (rule is OwnerRule.ACCOUNT_OWNER and account_owner(attributes) is not None)


def choose_owner(
    rule: OwnerRule, *, members: tuple[str, ...], attributes: dict[str, str], turn: int
) -> str | None:
    """The case's owner by rule: the customer's account owner if they have one, else the
    member whose turn it is (round-robin)."""
    if rule is OwnerRule.UNASSIGNED:
        return None
    if rule is OwnerRule.ACCOUNT_OWNER:
        owner = account_owner(attributes)
        if owner is not None:
            return owner
    return members[turn % len(members)]
