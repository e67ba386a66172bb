"""Shared fixtures: real infrastructure, started once per test session and only when a test
asks for it (unit tests never start anything)."""

from collections.abc import Iterator

import pytest

from tests.support.infra import Infra, running_infra


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    with running_infra(tmp_path_factory.mktemp("infra")) as started:
        yield started
