"""The console's composition root, used by production and by tests."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from nps_console.adapters.apis import Apis
from nps_console.adapters.oidc import IdentityProvider
from nps_console.config import ConsoleSettings
from nps_console.entrypoints import impact_page, web
from nps_kit.access import Access
from nps_kit.clock import Clock, SystemClock
from nps_kit.db import create_engine, ping, session_factory, unit_of_work
from nps_kit.http import create_app
from nps_kit.logging import get_logger
from nps_kit.service import BackgroundLoops

log = get_logger(__name__)

#: How often ended sessions are deleted.
PRUNE_EVERY_SECONDS = 600.0


@dataclass
class Console:
    app: FastAPI
    runtime: BackgroundLoops


class MissingSessionKey(Exception):  # noqa: N818 - named for what it is
    """The console was started without CONSOLE_SESSION_KEYS."""


MISSING_KEY = (
    "CONSOLE_SESSION_KEYS is not set: the console keeps people's tokens encrypted and needs "
    "a key to do it. Make one with\n"
    "  python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'\n"
    "and give it to the console as a secret (`make run` makes its own under var/console/)."
)


def build(settings: ConsoleSettings, *, clock: Clock | None = None) -> Console:
    if not settings.session_key_list:
        raise MissingSessionKey(MISSING_KEY)
    clock = clock or SystemClock()
    engine = create_engine(settings.database, application_name="npsloop-console")
    sessions = session_factory(engine)
    access = Access.connect(settings.auth)
    apis = Apis(
        followup_url=settings.followup_url,
        scoring_url=settings.scoring_url,
        timeout=settings.api_timeout_seconds,
    )
    runtime = BackgroundLoops()
    stopping = asyncio.Event()

    async def prune() -> None:
        """Delete ended sessions now and then (a failure is logged and tried again)."""
        while not stopping.is_set():
            try:
                async with unit_of_work(sessions) as db:
                    removed = await console.store(db).remove_expired(clock.now())
                if removed:
                    log.info("console.sessions_pruned", sessions=removed)
            except Exception as exc:
                log.warning("console.prune_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), PRUNE_EVERY_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await access.start()
        runtime.spawn("prune-sessions", prune(), stop=stopping.set)
        log.info("service.started", service="console")
        try:
            yield
        finally:
            log.info("service.stopping", service="console")
            await runtime.stop()
            await apis.close()
            await access.close()
            await engine.dispose()

    async def database() -> None:
        await ping(engine)

    app = create_app(
        title="npsloop console",
        description="Where customer-success people sign in and work their cases.",
        version="0.1.0",
        readiness={"database": database, "identity_provider": access.check},
        lifespan=lifespan,
        docs=False,
    )
    console = web.Console(
        settings=settings,
        sessions=sessions,
        provider=IdentityProvider(settings),
        verifier=access.verifier,
        apis=apis,
        clock=clock,
    )
    app.include_router(web.router(console))
    app.include_router(impact_page.router(console))
    return Console(app=app, runtime=runtime)
