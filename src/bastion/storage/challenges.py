"""Ceremony state (mfa_tokens, WebAuthn challenges): in the database, or in
Redis when configured, so that any instance can finish what another began."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.errors import Unavailable
from bastion.storage.database import guarded
from bastion.storage.tables import mfa_challenges

#: Expired rows are swept on one ``put`` in this many.
_SWEEP_EVERY = 64


class SqlChallengeStore:
    """:class:`bastion.storage.protocols_mfa.ChallengeStore` in the ``mfa_challenges`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._puts = 0

    @guarded
    async def put(self, key: str, data: dict[str, Any], *, expires_at: float) -> None:
        self._puts += 1
        async with self._engine.begin() as conn:
            if self._puts % _SWEEP_EVERY == 0:
                # Entries live 5 minutes: one whose deadline is an hour before
                # this new one's has long been dead (housekeeping may prune too).
                await conn.execute(
                    delete(mfa_challenges).where(mfa_challenges.c.expires_at < expires_at - 3600)
                )
            await conn.execute(
                insert(mfa_challenges).values(
                    key=key, data=json.dumps(data), expires_at=expires_at, failures=0
                )
            )

    @guarded
    async def get(self, key: str, *, now: float) -> dict[str, Any] | None:
        query = select(mfa_challenges.c.data).where(
            and_(mfa_challenges.c.key == key, mfa_challenges.c.expires_at > now)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else dict(json.loads(row.data))

    @guarded
    async def take(self, key: str, *, now: float) -> dict[str, Any] | None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(mfa_challenges.c.data).where(
                        and_(mfa_challenges.c.key == key, mfa_challenges.c.expires_at > now)
                    )
                )
            ).first()
            if row is None:
                return None
            # The DELETE decides: of two concurrent takers, one removes the row.
            result = await conn.execute(delete(mfa_challenges).where(mfa_challenges.c.key == key))
        return dict(json.loads(row.data)) if result.rowcount == 1 else None

    @guarded
    async def fail(self, key: str, *, now: float) -> int:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(mfa_challenges)
                .where(and_(mfa_challenges.c.key == key, mfa_challenges.c.expires_at > now))
                .values(failures=mfa_challenges.c.failures + 1)
            )
            row = (
                await conn.execute(
                    select(mfa_challenges.c.failures).where(mfa_challenges.c.key == key)
                )
            ).first()
        return 0 if row is None else int(row.failures)

    @guarded
    async def delete(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(mfa_challenges).where(mfa_challenges.c.key == key))

    @guarded
    async def prune(self, *, now: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` expired entries (for housekeeping); how many went."""
        doomed = (
            select(mfa_challenges.c.key)
            .where(mfa_challenges.c.expires_at <= now)
            .limit(limit)
            .scalar_subquery()
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(mfa_challenges).where(mfa_challenges.c.key.in_(doomed))
            )
        return int(result.rowcount)


class RedisChallengeStore:
    """:class:`bastion.storage.protocols_mfa.ChallengeStore` in Redis keys with a TTL.

    ``GETDEL`` makes ``take`` atomic across every instance.

    Args:
        client: A Redis client.
        ttl: Seconds Redis keeps an entry by its own clock: a bound on memory.
            The deadline given to ``put`` is checked against the app's clock.
    """

    _PREFIX = "bastion:mfa:"

    def __init__(self, client: Redis, *, ttl: int = 900) -> None:
        self._redis = client
        self._ttl = ttl

    async def put(self, key: str, data: dict[str, Any], *, expires_at: float) -> None:
        payload = json.dumps({**data, "_expires_at": expires_at})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._PREFIX + key, payload, ex=self._ttl)
                pipe.delete(self._PREFIX + key + ":f")
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise Unavailable("redis is unavailable") from exc

    async def get(self, key: str, *, now: float) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(self._PREFIX + key)
        except (RedisError, OSError) as exc:
            raise Unavailable("redis is unavailable") from exc
        return _live(raw, now)

    async def take(self, key: str, *, now: float) -> dict[str, Any] | None:
        try:
            raw = await self._redis.getdel(self._PREFIX + key)
        except (RedisError, OSError) as exc:
            raise Unavailable("redis is unavailable") from exc
        return _live(raw, now)

    async def fail(self, key: str, *, now: float) -> int:
        try:
            if await self._redis.exists(self._PREFIX + key) == 0:
                return 0
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._PREFIX + key + ":f")
                pipe.expire(self._PREFIX + key + ":f", self._ttl)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise Unavailable("redis is unavailable") from exc
        return int(count)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._PREFIX + key, self._PREFIX + key + ":f")
        except (RedisError, OSError) as exc:
            raise Unavailable("redis is unavailable") from exc


def _live(raw: bytes | str | None, now: float) -> dict[str, Any] | None:
    # Redis expires by its own clock; the stored deadline applies the app's
    # (injected) clock too, so tests that move time see entries expire.
    if raw is None:
        return None
    data = dict(json.loads(raw))
    if float(data.pop("_expires_at", now + 1)) <= now:
        return None
    return data
