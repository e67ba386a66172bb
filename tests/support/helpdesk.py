"""notify's helpdesk webhook routes as an app served in process, for the tests that post to
them (signatures, bounds, fuzzing). The outbox relay is not started: nothing is published."""

from collections.abc import Sequence
from datetime import datetime

from fastapi import FastAPI

from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_kit.http import create_app
from nps_kit.outbox import OutboxRelay
from nps_notify.adapters import tables as notify_tables
from nps_notify.entrypoints.api import helpdesk_router


def helpdesk_app(
    sessions: SessionFactory,
    *,
    now: datetime,
    zendesk_secrets: Sequence[str],
    jira_secrets: Sequence[str],
    docs: bool = False,
) -> FastAPI:
    async def never(_messages: object) -> None:
        raise AssertionError("the relay is not started in these tests")

    app = create_app(
        title="npsloop notify", description="-", version="test", readiness={}, docs=docs
    )
    app.include_router(
        helpdesk_router(
            sessions=sessions,
            relay=OutboxRelay(sessions=sessions, table=notify_tables.outbox, send_many=never),
            clock=FrozenClock(now),
            zendesk_secrets=list(zendesk_secrets),
            jira_secrets=list(jira_secrets),
        )
    )
    return app
