"""A provider's HTTP client holds at most `MAX_CONNECTIONS` connections, over real HTTP: more
requests at once than that wait for a free connection and all of them are answered."""

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nps_notify.adapters.provider_http import MAX_CONNECTIONS, ProviderClient
from nps_notify.domain.dispatch import DispatchState, Outcome
from tests.support.serve import served


def _slow_provider(ports: set[int]) -> Starlette:
    """Answers each request after a short while (so requests overlap), noting the client's
    port: one port per connection."""

    async def answer(request: Request) -> JSONResponse:
        assert request.client is not None
        ports.add(request.client.port)
        await asyncio.sleep(0.05)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/call", answer, methods=["POST"])])


async def test_twice_as_many_requests_as_connections_share_them_and_are_all_answered() -> None:
    ports: set[int] = set()
    with served(_slow_provider(ports)) as url:
        client = ProviderClient(
            name="provider", base_url=url, auth=None, timeout=10, attempts=1, rate_per_second=1e6
        )
        try:
            outcomes = await asyncio.gather(
                *(
                    client.call(
                        "POST",
                        "/call",
                        classify=lambda r: Outcome(
                            DispatchState.SENT, provider_message_id=str(r.status_code)
                        ),
                        idempotent=True,
                    )
                    for _ in range(2 * MAX_CONNECTIONS)
                )
            )
        finally:
            await client.aclose()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * (2 * MAX_CONNECTIONS)
    assert 1 < len(ports) <= MAX_CONNECTIONS
