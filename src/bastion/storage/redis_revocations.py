"""Revocations announced through Redis pub/sub, so every instance rejects a
revoked token on its very next request rather than at its next poll of the
database log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bastion.storage.protocols import Revocation

CHANNEL = "bastion:revocations"
#: The listener pings Redis after this many idle seconds...
PING_INTERVAL_SECONDS = 5.0
#: ...and reconnects when nothing at all (not even the pong) arrives this long
#: after the ping: a half-open connection (a Redis host gone, a NAT entry
#: dropped) otherwise waits for messages that never come.
PING_TIMEOUT_SECONDS = 2.0
#: Pause before reconnecting after a failure.
RECONNECT_DELAY_SECONDS = 1.0
log = logging.getLogger("bastion.revocations")


class RedisRevocationBus:
    """Publishes and receives revocation marks on one Redis channel.

    Args:
        url: ``redis://host:port/db``.
        ping_interval: See :data:`PING_INTERVAL_SECONDS`.
        ping_timeout: See :data:`PING_TIMEOUT_SECONDS`.
        reconnect_delay: See :data:`RECONNECT_DELAY_SECONDS`.
    """

    def __init__(
        self,
        url: str,
        *,
        ping_interval: float = PING_INTERVAL_SECONDS,
        ping_timeout: float = PING_TIMEOUT_SECONDS,
        reconnect_delay: float = RECONNECT_DELAY_SECONDS,
    ) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        # No silent retries on the listening connection: redis-py would
        # reconnect and resubscribe behind our back, and the marks published
        # meanwhile would be lost without anyone resynchronising.
        self._listen_redis: Redis = Redis.from_url(
            url,
            socket_timeout=ping_timeout,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._reconnect_delay = reconnect_delay

    async def publish(self, marks: Sequence[Revocation]) -> None:
        """Announce ``marks``; a Redis failure is logged, never raised."""
        if not marks:
            return
        payload = json.dumps([[m.subject, m.min_version, m.expires_at] for m in marks])
        try:
            await self._redis.publish(CHANNEL, payload)
        except (RedisError, OSError):
            log.warning("revocation broadcast failed; other instances catch up from the database")

    async def listen(
        self,
        apply: Callable[[Revocation], None],
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Apply every announced mark until cancelled, reconnecting after failures.

        Args:
            apply: Called with each mark received.
            on_connect: Awaited after every (re)subscription, so the caller can
                catch up from the database on what was published while the
                listener was not subscribed.
        """
        while True:
            try:
                async with self._listen_redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if on_connect is not None:
                        await on_connect()
                    await self._receive(pubsub, apply)
            except (RedisError, OSError, ValueError, TypeError):
                log.warning("revocation listener lost Redis; reconnecting")
                await asyncio.sleep(self._reconnect_delay)

    async def _receive(self, pubsub: PubSub, apply: Callable[[Revocation], None]) -> None:
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is None:
                await pubsub.ping()
                message = await pubsub.get_message(timeout=self._ping_timeout)
                if message is None:
                    raise RedisConnectionError("no answer to PING on the revocation channel")
            _apply_message(message, apply)

    async def close(self) -> None:
        """Release the connections."""
        await self._redis.aclose()
        await self._listen_redis.aclose()


def _apply_message(message: dict[str, Any], apply: Callable[[Revocation], None]) -> None:
    if message.get("type") != "message":
        return  # subscription confirmations and pongs
    for subject, min_version, expires_at in json.loads(message["data"]):
        apply(Revocation(str(subject), int(min_version), float(expires_at)))
