"""Followup's HTTP API for customer-success teams: cases, their lifecycle and timeline, the
do-not-contact list, the figures, referrals, the impact figures and the policy in force. Each
group of routes is in its own module (`case_routes`, `response_routes`,
`do_not_contact_routes`, `figures_routes`, `referral_routes`, `impact_routes`); `router` puts
them together, and the policy's route is here."""

from typing import Annotated

from fastapi import APIRouter

from nps_followup.entrypoints.callers import actor_of
from nps_followup.entrypoints.case_routes import case_routes
from nps_followup.entrypoints.do_not_contact_routes import do_not_contact_routes
from nps_followup.entrypoints.figures_routes import figure_routes
from nps_followup.entrypoints.impact_routes import impact_routes
from nps_followup.entrypoints.policy_models import PolicyOut, RuleOut
from nps_followup.entrypoints.referral_routes import referral_routes
from nps_followup.entrypoints.response_routes import response_routes
from nps_followup.handlers import PolicyInForce
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory


def router(
    *, sessions: SessionFactory, clock: Clock, policy: PolicyInForce, access: Access
) -> APIRouter:
    """The routes, each behind `access`: agents work their teams' cases (and those they own),
    leads also assign, close and reopen them, admins everything, viewers only the figures."""
    api = APIRouter()
    case_routes(api, sessions=sessions, clock=clock, policy=policy, access=access)
    response_routes(api, sessions=sessions, policy=policy, access=access)
    do_not_contact_routes(api, sessions=sessions, clock=clock, access=access)
    _policy_routes(api, policy=policy, access=access)
    figure_routes(api, sessions=sessions, clock=clock, access=access)
    referral_routes(api, sessions=sessions, clock=clock, access=access, actor=actor_of)
    impact_routes(api, sessions=sessions, access=access)
    return api


def _policy_routes(api: APIRouter, *, policy: PolicyInForce, access: Access) -> None:
    """The policy in short: no customer's data, any role (viewer and up)."""
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type

    @api.get(
        "/v1/policy",
        response_model=PolicyOut,
        summary="The policy in force: its rules (match, deadline, ladder, messages), read-only",
    )
    async def get_policy(_: Viewer) -> PolicyOut:
        """Rules name teams and roles, never a person: any role may read them."""
        p = policy.policy
        return PolicyOut(
            rules=[
                RuleOut.of(
                    r,
                    resurvey_after=p.resurvey_delay(r),
                    resurvey_webhook=p.resurvey_webhook_for(r),
                )
                for r in p.rules
            ],
            teams=sorted(p.teams),
            root_causes=list(p.root_causes),
        )
