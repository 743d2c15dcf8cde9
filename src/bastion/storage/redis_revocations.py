"""Revocations announced through Redis pub/sub, so every instance rejects a
revoked token on its very next request rather than at its next poll of the
database log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.storage.protocols import Revocation

CHANNEL = "bastion:revocations"
log = logging.getLogger("bastion.revocations")


class RedisRevocationBus:
    """Publishes and receives revocation marks on one Redis channel.

    Args:
        url: ``redis://host:port/db``.
    """

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._listen_redis: Redis = Redis.from_url(url, socket_connect_timeout=0.5)

    async def publish(self, marks: Sequence[Revocation]) -> None:
        """Announce ``marks``; a Redis failure is logged, never raised."""
        if not marks:
            return
        payload = json.dumps([[m.subject, m.min_version, m.expires_at] for m in marks])
        try:
            await self._redis.publish(CHANNEL, payload)
        except (RedisError, OSError):
            log.warning("revocation broadcast failed; other instances catch up from the database")

    async def listen(self, apply: Callable[[Revocation], None]) -> None:
        """Apply every announced mark until cancelled, reconnecting after failures."""
        while True:
            try:
                async with self._listen_redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        for subject, min_version, expires_at in json.loads(message["data"]):
                            apply(Revocation(str(subject), int(min_version), float(expires_at)))
            except (RedisError, OSError, ValueError, TypeError):
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Release the connections."""
        await self._redis.aclose()
        await self._listen_redis.aclose()
