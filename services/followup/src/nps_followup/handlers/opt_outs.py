"""The do-not-contact list: opt-outs reported by providers, and people reading and changing
it through the API."""

from datetime import datetime

from nps_events import ContactOptOut, OptOutScope
from nps_followup.domain.contact_rules import DoNotContactEntry
from nps_followup.handlers.common import CONSUMER
from nps_followup.handlers.ports import DoNotContactList, OptOuts

#: The source of the entries people add through the API.
BY_HAND = "api"


class NotOnTheList(LookupError):  # noqa: N818 - named for what it is
    """The customer is not on the do-not-contact list for that scope."""

    def __init__(self, customer_id: str, scope: OptOutScope) -> None:
        super().__init__(f"{customer_id} is not on the list for {scope.value}.")
        self.customer_id = customer_id
        self.scope = scope


async def record_opt_outs(repo: OptOuts, opt_outs: list[ContactOptOut], *, now: datetime) -> None:
    """Put each customer who opted out on the do-not-contact list (for the given channel)."""
    fresh = await repo.claim(CONSUMER, (str(o.event_id()) for o in opt_outs))
    for opt_out in opt_outs:
        if str(opt_out.event_id()) in fresh:
            await repo.add_opt_out(
                opt_out.customer_id,
                opt_out.scope.value,
                source=opt_out.source,
                reason=opt_out.reason or f"provider event {opt_out.provider_event_id}",
                at=opt_out.occurred_at,
            )


async def do_not_contact_of(repo: DoNotContactList, customer_id: str) -> list[DoNotContactEntry]:
    """The customer's entries on the do-not-contact list, in scope order (none: not on it)."""
    return await repo.opt_outs_of(customer_id)


async def put_on_do_not_contact(
    repo: DoNotContactList,
    customer_id: str,
    scope: OptOutScope,
    *,
    reason: str | None,
    now: datetime,
) -> None:
    """A person puts the customer on the list for `scope`; an entry already there for that
    scope (a provider's, or an earlier one) is kept as it was."""
    await repo.add_opt_out(customer_id, scope.value, source=BY_HAND, reason=reason, at=now)


async def take_off_do_not_contact(
    repo: DoNotContactList, customer_id: str, scope: OptOutScope
) -> None:
    """A person takes the customer off the list for one scope; the other scopes stay.
    Raises `NotOnTheList` when the customer is not on it for that scope."""
    if not await repo.remove_opt_out(customer_id, scope.value):
        raise NotOnTheList(customer_id, scope)
