"""Housekeeping against the real database: what is obsolete goes, in small
batches, what still matters stays, and a database that would otherwise grow
stays bounded (SPEC, "Housekeeping")."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from bastion.bootstrap import Container
from bastion.services.housekeeping import Housekeeper
from bastion.storage.protocols import NewUser, SecurityEvent
from bastion.storage.sql_events import SqlEventStore
from bastion.storage.sql_housekeeping import SqlEventPruner, SqlRunLock
from bastion.storage.sql_sessions import SqlSessionStore
from bastion.storage.tables import events, refresh_tokens, revocations, sessions
from tests.conftest import ManualClock
from tests.storage.conftest import ContainerFactory

HOUR = 3600.0
DAY = 86_400.0
TABLES = {
    "events": events,
    "sessions": sessions,
    "refresh_tokens": refresh_tokens,
    "revocations": revocations,
}


async def counts(container: Container) -> dict[str, int]:
    """Rows per table."""
    async with container.engine.connect() as conn:
        return {
            name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in TABLES.items()
        }


async def make_user(container: Container, name: str = "alice") -> int:
    new = NewUser(name, f"{name}@example.com", 30, "x", (), container.clock.now())
    return (await container.users.create(new)).id


class Traffic:
    """One simulated hour of use: logins, refreshes, logouts, events."""

    def __init__(self, container: Container, user_id: int) -> None:
        self.container = container
        self.user_id = user_id
        self.sessions = SqlSessionStore(container.engine)
        self.events = SqlEventStore(container.engine)

    async def hour(self, logins: int = 4, refreshes: int = 3, event_count: int = 20) -> None:
        now = self.container.clock.now()
        ttl = self.container.settings.refresh_token_ttl
        opened = []
        for _ in range(logins):
            sid = uuid.uuid4().hex
            await self.sessions.create(
                session_id=sid,
                user_id=self.user_id,
                credential_version=0,
                digest=uuid.uuid4().hex,
                now=now,
                expires_at=now + ttl,
            )
            for _ in range(refreshes):
                await self.sessions.add_token(
                    session_id=sid,
                    user_id=self.user_id,
                    credential_version=0,
                    digest=uuid.uuid4().hex,
                    now=now,
                    expires_at=now + ttl,
                )
            opened.append(sid)
        # Half the sessions end with a logout (a revocation mark each).
        await self.sessions.revoke(opened[: logins // 2], now=now, expires_at=now + 905)
        await self.events.add_many(
            [SecurityEvent(at=now, type="authn_login_success", outcome="success")] * event_count
        )


async def test_a_database_that_would_grow_stays_bounded(make_container: ContainerFactory) -> None:
    clock = ManualClock()
    container = await make_container(
        clock=clock, event_retention_days=1, access_token_ttl=900, refresh_token_ttl=7200
    )
    traffic = Traffic(container, await make_user(container))
    sizes = []
    for _hour in range(50):
        await traffic.hour()
        clock.advance(HOUR)
        await container.housekeeper.run()
        sizes.append(await counts(container))
    # Two simulated days wrote 1,000 events, 200 sessions, 800 tokens and 100
    # marks; what is kept is at most a retention period's worth.
    assert sizes[-1]["events"] <= 20 * 25
    assert sizes[-1]["sessions"] <= 4 * 2
    assert sizes[-1]["refresh_tokens"] <= 4 * 4 * 2
    assert sizes[-1]["revocations"] <= 2
    assert sizes[-1] == sizes[29], "past the retention period the size no longer grows"


async def test_what_still_matters_is_kept(make_container: ContainerFactory) -> None:
    clock = ManualClock()
    container = await make_container(
        clock=clock, event_retention_days=1, access_token_ttl=900, refresh_token_ttl=7200
    )
    user_id = await make_user(container)
    store = SqlSessionStore(container.engine)
    start = clock.now()

    async def session(sid: str, expires_in: float) -> None:
        await store.create(
            session_id=sid,
            user_id=user_id,
            credential_version=0,
            digest=f"{sid}-token",
            now=clock.now(),
            expires_at=clock.now() + expires_in,
        )

    await session("expired", 60)
    await session("revoked-long-ago", 7200)
    await store.revoke(["revoked-long-ago"], now=start, expires_at=start + 905)
    await SqlEventStore(container.engine).add_many(
        [SecurityEvent(at=start, type="user_created", outcome="success")]
    )
    clock.advance(DAY + 1000)
    await session("live", 7200)
    await session("revoked-just-now", 7200)
    await store.revoke(["revoked-just-now"], now=clock.now(), expires_at=clock.now() + 905)
    await SqlEventStore(container.engine).add_many(
        [SecurityEvent(at=clock.now(), type="authn_login_success", outcome="success")]
    )

    removed = await container.housekeeper.prune_all()

    assert removed == {
        "refresh_tokens": 2,
        "sessions": 2,
        "revocations": 1,
        "events": 1,
        # The stores of mail, one-time tokens, browser sessions and MFA
        # challenges hold nothing in this test.
        "mail": 0,
        "one-time tokens": 0,
        "browser sessions": 0,
        "mfa challenges": 0,
    }
    async with container.engine.connect() as conn:
        left = set((await conn.execute(select(sessions.c.id))).scalars())
        kept_tokens = set((await conn.execute(select(refresh_tokens.c.digest))).scalars())
        kept_events = list((await conn.execute(select(events.c.type))).scalars())
        marks = list((await conn.execute(select(revocations.c.subject))).scalars())
    assert left == {"live", "revoked-just-now"}
    assert kept_tokens == {"live-token", "revoked-just-now-token"}
    assert kept_events == ["authn_login_success"]
    assert marks == ["session:revoked-just-now"]
    # The revoked session's access tokens are still refused (its mark is kept).
    await container.sync_revocations()
    assert "revoked-just-now" in set(container.revocations.sessions())


async def test_steps_remove_in_small_batches(make_container: ContainerFactory) -> None:
    clock = ManualClock()
    container = await make_container(clock=clock, event_retention_days=1)
    old = [SecurityEvent(at=clock.now(), type="authz_fail", outcome="failure")] * 35
    await SqlEventStore(container.engine).add_many(old)
    clock.advance(2 * DAY)
    pruner = SqlEventPruner(container.engine, retention_seconds=DAY)
    assert await pruner.prune(clock.now(), 10) == 10
    housekeeper = Housekeeper([pruner], clock, batch=10, max_batches=2, pause=0)
    assert await housekeeper.run() == {"events": 20}, "a background run stops at its budget"
    assert await housekeeper.prune_all() == {"events": 5}
    assert (await counts(container))["events"] == 0


class Recording:
    """A pruner that counts its calls (the lock test only needs to know
    whether a run happened)."""

    name = "probe"

    def __init__(self) -> None:
        self.calls = 0

    async def prune(self, now: float, batch: int) -> int:
        self.calls += 1
        return 0


async def fail_under_lock(lock: SqlRunLock) -> None:
    """Take ``lock`` and fail inside it, as a broken step would."""
    async with lock.hold() as taken:
        assert taken
        raise RuntimeError("a step broke")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_one_instance_at_a_time_on_postgresql(make_container: ContainerFactory) -> None:
    container = await make_container()
    theirs = Recording()
    other = Housekeeper([theirs], container.clock, lock=SqlRunLock(container.engine))
    async with SqlRunLock(container.engine).hold() as taken:
        assert taken
        assert await other.run() is None
        assert theirs.calls == 0
    assert await other.run() == {"probe": 0}
    assert theirs.calls == 1
    # Released even when a run fails.
    with pytest.raises(RuntimeError):
        await fail_under_lock(SqlRunLock(container.engine))
    assert await asyncio.wait_for(other.run(), 10) == {"probe": 0}
