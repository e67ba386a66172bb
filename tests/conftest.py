"""Shared fixtures: real infrastructure, started once per test session and only when a test
asks for it (unit tests never start anything)."""

from collections.abc import AsyncIterator, Iterator

import pytest

from nps_kit.access import Access
from tests.support.infra import Infra, running_infra


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    with running_infra(tmp_path_factory.mktemp("infra")) as started:
        yield started


@pytest.fixture(scope="session")
async def access(infra: Infra) -> AsyncIterator[Access]:
    """The bearer-token gate of an API built in the test process, trusting the session's
    identity provider (keys fetched over HTTP, as a service does)."""
    gate = Access.connect(infra.auth())
    await gate.start()
    try:
        yield gate
    finally:
        await gate.close()
