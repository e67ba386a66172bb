"""Who calls followup's API: the actor their changes are recorded under, and the cases they may
see."""

from nps_events import Actor, ActorKind
from nps_events.text import clean_line
from nps_followup.domain.access import CaseScope, scope_of
from nps_followup.domain.cases import Case
from nps_followup.handlers import PolicyInForce
from nps_kit.access import forbidden, has_role
from nps_kit.auth import Principal, Role


def actor_of(principal: Principal) -> Actor:
    """The timeline's and the events' actor for the caller of a request."""
    if principal.is_program:
        client = clean_line(principal.client_id or principal.subject)[:200] or "program"
        return Actor(kind=ActorKind.PROGRAM, id=client, name=client)
    name = clean_line(principal.actor)[:254] or None
    return Actor(kind=ActorKind.PERSON, id=clean_line(principal.subject)[:200] or "?", name=name)


def visible_to(policy: PolicyInForce, principal: Principal) -> CaseScope | None:
    """The cases `principal` may see; None: every case (an admin)."""
    if has_role(principal, Role.ADMIN):
        return None
    return scope_of(policy.policy, email=principal.email, groups=principal.groups)


def check_sees(policy: PolicyInForce, principal: Principal, case: Case) -> None:
    visible = visible_to(policy, principal)
    if visible is not None and not visible.sees(case):
        raise forbidden(
            principal,
            Role.AGENT,
            f"Case {case.case_id} belongs to team {case.team or '(none)'}, which is not "
            "yours, and you do not own it.",
        )
