"""The kit's inbox (`nps_kit.inbox.claim`) on PostgreSQL: what a consumer claims is what it has
not processed before, per consumer, whatever the batch holds."""

import uuid

import pytest

from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.inbox import claim
from nps_scoring.adapters import tables as scoring_tables

INBOX = scoring_tables.inbox


async def test_a_batch_claims_only_the_ids_its_consumer_has_not_seen(
    sessions: SessionFactory,
) -> None:
    seen, new = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(3)]
    async with unit_of_work(sessions) as session:
        assert await claim(session, INBOX, "scorer", [seen]) == {seen}
    async with unit_of_work(sessions) as session:
        # A repeat inside the batch and one claimed before: each new id once, the old one not.
        claimed = await claim(session, INBOX, "scorer", [seen, new[0], *new, new[2]])
    assert claimed == set(new)
    async with unit_of_work(sessions) as session:
        # Another consumer of the same events has its own record of them.
        assert await claim(session, INBOX, "another", [seen, *new]) == {seen, *new}
        assert await claim(session, INBOX, "another", []) == set()


async def test_a_claim_rolled_back_with_its_work_leaves_the_ids_to_claim_again(
    sessions: SessionFactory,
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]

    async def claim_then_fail() -> None:
        async with unit_of_work(sessions) as session:
            assert await claim(session, INBOX, "scorer", ids) == set(ids)
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError, match="the work failed"):
        await claim_then_fail()
    async with unit_of_work(sessions) as session:
        assert await claim(session, INBOX, "scorer", ids) == set(ids)
