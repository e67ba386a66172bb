"""What followup's use cases share: the policy in force, their errors, timeline entries
and the staff notices they request."""

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nps_events import (
    Actor,
    Customer,
    NotifyStaff,
    StaffReason,
)
from nps_events.ids import derive_id
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CaseStatus,
    HolidaysFor,
    TimelineEntry,
)
from nps_followup.domain.policy import Policy
from nps_followup.domain.referrals import ReferralCodes
from nps_kit.logging import get_logger

CONSUMER = "followup"

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    """The validated policy and the teams' public holidays, built once at start-up."""

    policy: Policy
    holidays_for: HolidaysFor
    #: The policy's referral program with its secret; None: no referral links.
    referrals: ReferralCodes | None = None


class CaseNotFound(LookupError):  # noqa: N818 - named for what it is
    pass


class UnknownOwner(ValueError):  # noqa: N818 - named for what it is
    """An owner who is not a member of the case's team: never emailed the case."""

    def __init__(self, owner: str, team: str | None, members: frozenset[str]) -> None:
        where = f"team {team!r}" if team else "any team"
        super().__init__(f"{owner} is not a member of {where} in the follow-up policy")
        self.owner = owner
        self.team = team
        self.members = members


def team_members(policy: Policy, team: str | None) -> frozenset[str]:
    """Who may own a case of `team` (every team's people when it has none): its members, its
    lead and its second level, as the policy names them (lower-cased)."""
    teams = [policy.teams[team]] if team in policy.teams else list(policy.teams.values())
    return frozenset(
        person.lower()
        for t in teams
        for person in (*t.members, t.lead, t.second_level)
        if person is not None
    )


@functools.lru_cache(maxsize=1024)
def system_actor(rule: str | None) -> Actor:
    """`Actor.system(rule)`, built once per rule: a frozen model, which every entry and event
    of an automatic step may share (a batch of 500 new cases built ~2,000 of them)."""
    return Actor.system(rule)


def timeline_entry(
    case_id: uuid.UUID,
    kind: str,
    now: datetime,
    *,
    origin: str,
    actor: Actor,
    **details: Any,
) -> TimelineEntry:
    """A timeline entry whose id derives from what caused it (`origin`), so a redelivered
    cause records it once. An automatic step's `actor` is `system_actor(rule)`."""
    return TimelineEntry(
        derive_id("timeline", str(case_id), kind, origin), kind, now, actor, details
    )


def customer_of(case: Case) -> Customer:
    return case.customer or Customer(
        id=case.customer_id, email=case.customer_email, name=case.customer_name
    )


def assignment_notice(
    case: Case, owner: str, *, origin: str, now: datetime, policy: Policy
) -> tuple[Action, NotifyStaff]:
    """Tell a person that a case a person must work is now theirs, with its deadline. The
    action's id derives from what assigned it, so a redelivery asks once."""
    action_id = derive_id("staff-assigned", origin)
    return (
        requested_action(action_id, "staff", f"case_{StaffReason.ASSIGNED.value}", now),
        NotifyStaff(
            action_id=action_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            recipient=owner,
            role="owner",
            reason=StaffReason.ASSIGNED,
            level=0,
            # The contact deadline, while nobody has reached the customer yet.
            due_at=case.due_at if case.status is CaseStatus.OPEN else None,
            segment=case.segment,
            score=case.score,
            requested_at=now,
            **notice_details(case, policy),
        ),
    )


def notice_details(case: Case, policy: Policy) -> dict[str, str | None]:
    """What a person told about a case needs to act on it: who the customer is and what they
    wrote, and the team (whose sender identity notify uses, and whose time zone the deadline
    is shown in)."""
    team = policy.teams.get(case.team or "")
    return {
        "team": case.team,
        "timezone": team.timezone if team is not None else None,
        "customer_name": case.customer_name,
        "comment": case.comment,
    }


def requested_action(action_id: uuid.UUID, channel: str, template: str, now: datetime) -> Action:
    return Action(
        action_id=action_id,
        channel=channel,
        template=template,
        state=ActionState.PLANNED,
        provider_message_id=None,
        reason=None,
        requested_at=now,
        updated_at=now,
    )
