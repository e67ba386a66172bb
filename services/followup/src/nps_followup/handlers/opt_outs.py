"""Opt-outs reported by providers: the do-not-contact list."""

from datetime import datetime

from nps_events import ContactOptOut
from nps_followup.handlers.common import CONSUMER
from nps_followup.handlers.ports import OptOuts


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
