"""Housekeeping steps for the SQL stores, and the one-instance-at-a-time lock.

Every step deletes at most ``batch`` rows chosen by a ``LIMIT`` subquery, in
its own transaction: ``DELETE ... WHERE key IN (SELECT key ... LIMIT n)``
works alike on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, and_, delete, or_, select, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.errors import Unavailable
from bastion.storage.database import guarded
from bastion.storage.tables import events, refresh_tokens, revocations, sessions

#: Key of the PostgreSQL advisory lock taken around background housekeeping
#: (any fixed 64-bit number no other application on the database uses).
HOUSEKEEPING_LOCK_KEY = 0x62617374696F6E01
_OUTAGES = (OperationalError, InterfaceError, PoolTimeoutError, OSError)


class SqlEventPruner:
    """Removes security events older than the retention period.

    Args:
        engine: The database.
        retention_seconds: How long events are kept (``BASTION_EVENT_RETENTION_DAYS``).
    """

    name = "events"

    def __init__(self, engine: AsyncEngine, retention_seconds: float) -> None:
        self._engine = engine
        self._retention = retention_seconds

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove at most ``batch`` events recorded before the retention period."""
        # Oldest ids first: ids follow time closely, so the primary key scan
        # stops after ``batch`` hits instead of reading the table.
        chosen = (
            select(events.c.id)
            .where(events.c.at < now - self._retention)
            .order_by(events.c.id)
            .limit(batch)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(events).where(events.c.id.in_(chosen)))
        return int(result.rowcount)


class SqlRefreshTokenPruner:
    """Removes expired refresh tokens.

    A spent token is kept until it expires: presented again before that, it
    is the reuse that revokes its family (RFC 9700 §4.14.2). Once expired it
    is refused for its age alone, so it can no longer matter.
    """

    name = "refresh_tokens"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove at most ``batch`` expired refresh tokens."""
        chosen = select(refresh_tokens.c.digest).where(refresh_tokens.c.expires_at <= now)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.digest.in_(chosen.limit(batch)))
            )
        return int(result.rowcount)


class SqlSessionPruner:
    """Removes sessions that have expired, or were revoked long enough ago,
    with whatever refresh tokens they still have.

    Args:
        engine: The database.
        revoked_grace: Seconds a revoked session is kept (the access-token
            lifetime: by then its tokens are refused for their age too).
    """

    name = "sessions"

    def __init__(self, engine: AsyncEngine, revoked_grace: float) -> None:
        self._engine = engine
        self._grace = revoked_grace

    def _obsolete(self, now: float) -> ColumnElement[bool]:
        return or_(
            sessions.c.expires_at <= now,
            and_(sessions.c.revoked_at.is_not(None), sessions.c.revoked_at <= now - self._grace),
        )

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove at most ``batch`` obsolete sessions and their refresh tokens."""
        async with self._engine.begin() as conn:
            chosen = list(
                (
                    await conn.execute(
                        select(sessions.c.id).where(self._obsolete(now)).limit(batch)
                    )
                ).scalars()
            )
            if not chosen:
                return 0
            # Explicitly, not through ON DELETE CASCADE: SQLite applies it
            # only on connections that enabled foreign keys.
            await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(chosen))
            )
            result = await conn.execute(delete(sessions).where(sessions.c.id.in_(chosen)))
        return int(result.rowcount)


class SqlRevocationPruner:
    """Removes revocation marks whose tokens have all expired (no instance
    loads them any more: see ``SqlRevocationStore.load``)."""

    name = "revocations"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove at most ``batch`` expired marks."""
        chosen = (
            select(revocations.c.id)
            .where(revocations.c.expires_at <= now)
            .order_by(revocations.c.id)
            .limit(batch)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(revocations).where(revocations.c.id.in_(chosen)))
        return int(result.rowcount)


class SqlRunLock:
    """One instance at a time: a PostgreSQL session-level advisory lock
    (``pg_try_advisory_lock``), held on one connection for the run and
    released when it ends, or by the server if that connection dies.

    On SQLite every holder gets it: one file has one host, the steps are
    idempotent, and SQLite serialises their writes anyway.
    """

    def __init__(self, engine: AsyncEngine, key: int = HOUSEKEEPING_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """``True`` in the body if this instance has the lock.

        Raises:
            Unavailable: the database cannot be reached.
        """
        if self._engine.dialect.name != "postgresql":
            yield True
            return
        try:
            conn = await self._engine.connect()
        except _OUTAGES as exc:
            raise Unavailable("the database is unavailable") from exc
        try:
            try:
                taken = bool(
                    await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
                )
                # The lock belongs to the session, not the transaction: end
                # the transaction so the connection does not idle inside one.
                await conn.commit()
            except _OUTAGES as exc:
                raise Unavailable("the database is unavailable") from exc
            yield taken
            if taken:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                await conn.commit()
        except BaseException:
            # Never hand a connection that may still hold the lock back to
            # the pool: dropping it makes the server release the lock.
            await conn.invalidate()
            raise
        finally:
            await conn.close()
