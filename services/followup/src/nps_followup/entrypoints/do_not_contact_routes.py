"""The do-not-contact list over HTTP: agents read it (before they call), admins change it."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel

from nps_events import OptOutScope
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.entrypoints.inputs import CustomerId, OptOutIn
from nps_followup.handlers import (
    NotOnTheList,
    do_not_contact_of,
    put_on_do_not_contact,
    take_off_do_not_contact,
)
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import Problem


class OptOutOut(BaseModel):
    scope: str
    source: str
    reason: str | None
    at: datetime


class DoNotContact(BaseModel):
    customer_id: str
    entries: list[OptOutOut]


def do_not_contact_routes(
    api: APIRouter, *, sessions: SessionFactory, clock: Clock, access: Access
) -> None:
    """The do-not-contact list: agents read it (before they call), admins change it."""
    Agent = Annotated[Principal, access.require(Role.AGENT)]  # noqa: N806 - a type
    Admin = Annotated[Principal, access.require(Role.ADMIN)]  # noqa: N806 - a type

    @api.get(
        "/v1/do-not-contact/{customer_id}",
        response_model=DoNotContact,
        summary="The customer's entries on the do-not-contact list",
    )
    async def get_do_not_contact(_: Agent, customer_id: CustomerId) -> DoNotContact:
        async with sessions() as session:
            entries = await do_not_contact_of(FollowupRepository(session), customer_id)
        return DoNotContact(
            customer_id=customer_id,
            entries=[
                OptOutOut(scope=e.scope, source=e.source, reason=e.reason, at=e.at) for e in entries
            ],
        )

    @api.put(
        "/v1/do-not-contact/{customer_id}/{scope}",
        status_code=204,
        summary="Put a customer on the do-not-contact list (email, sms or all)",
    )
    async def add_to_do_not_contact(
        _: Admin, customer_id: CustomerId, scope: OptOutScope, body: OptOutIn
    ) -> Response:
        async with unit_of_work(sessions) as session:
            await put_on_do_not_contact(
                FollowupRepository(session), customer_id, scope, reason=body.reason, now=clock.now()
            )
        return Response(status_code=204)

    @api.delete(
        "/v1/do-not-contact/{customer_id}/{scope}",
        status_code=204,
        summary="Take a customer off the do-not-contact list for one scope",
        responses={404: {"description": "Not on the list for that scope (problem+json)."}},
    )
    async def remove_from_do_not_contact(
        _: Admin, customer_id: CustomerId, scope: OptOutScope
    ) -> Response:
        try:
            async with unit_of_work(sessions) as session:
                await take_off_do_not_contact(FollowupRepository(session), customer_id, scope)
        except NotOnTheList as exc:
            raise Problem(404, "Not found", str(exc)) from None
        return Response(status_code=204)
