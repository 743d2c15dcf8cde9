"""The revocation poll misses no mark, whatever order transactions commit in
(issue 17 #2), against the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from bastion.storage.tables import revocations
from tests.conftest import ManualClock
from tests.storage.conftest import ContainerFactory


def _mark(subject: str, expires_at: float, **extra: int) -> dict[str, object]:
    return {"subject": subject, "min_version": 0, "expires_at": expires_at, **extra}


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_mark_committed_after_a_higher_id_is_still_loaded(
    make_container: ContainerFactory,
) -> None:
    """tx1 inserts, tx2 inserts and commits, poll, tx1 commits, poll finds it."""
    container = await make_container()
    expires = container.clock.now() + 600
    async with container.engine.connect() as tx1:
        await tx1.begin()
        await tx1.execute(insert(revocations).values(_mark("session:first", expires)))
        async with container.engine.begin() as tx2:
            await tx2.execute(insert(revocations).values(_mark("session:second", expires)))
        await container.sync_revocations()
        assert set(container.revocations.sessions()) == {"second"}
        await tx1.commit()
    await container.sync_revocations()
    assert set(container.revocations.sessions()) == {"first", "second"}


async def test_a_mark_below_the_highest_id_seen_is_applied_once(
    make_container: ContainerFactory,
) -> None:
    """The same visibility order, forced with explicit ids (on every backend)."""
    clock = ManualClock()
    container = await make_container(clock=clock)
    expires = clock.now() + 600
    async with container.engine.begin() as conn:
        await conn.execute(insert(revocations).values(_mark("session:late", expires, id=10)))
    assert await container.revocation_feed.sync() == 1
    async with container.engine.begin() as conn:
        await conn.execute(insert(revocations).values(_mark("session:early", expires, id=5)))
    clock.advance(1)
    assert await container.revocation_feed.sync() == 1
    assert set(container.revocations.sessions()) == {"late", "early"}
    clock.advance(1)
    assert await container.revocation_feed.sync() == 0, "marks are applied once"


async def test_sync_reports_the_list_synchronised(make_container: ContainerFactory) -> None:
    container = await make_container()
    assert container.revocations_synced is False
    await container.sync_revocations()
    assert container.revocations_synced is True
