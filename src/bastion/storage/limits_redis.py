"""Rate limits shared by every instance through Redis (the ``limits`` library).

``limits``' moving window on Redis is one atomic Lua script per hit, so
concurrent instances cannot over-admit.
"""

from __future__ import annotations

import contextlib

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from bastion.errors import Unavailable
from bastion.security.ratelimit import RateDecision
from bastion.storage.protocols import RateRule

#: A limiter call waits at most this long for Redis before failing.
REDIS_TIMEOUT_SECONDS = 0.5


class RedisRateLimitStore:
    """:class:`bastion.storage.protocols.RateLimitStore` on Redis.

    Args:
        url: ``redis://host:port/db``.
    """

    def __init__(self, url: str) -> None:
        self._storage = RedisStorage(
            "async+" + url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            key_prefix="bastion",
            implementation="redispy",
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, RateLimitItemPerSecond] = {}

    def _item(self, rule: RateRule) -> RateLimitItemPerSecond:
        item = self._items.get(rule.name)
        if item is None:
            item = RateLimitItemPerSecond(rule.limit, rule.window, namespace=rule.name)
            self._items[rule.name] = item
        return item

    async def hit(self, rule: RateRule, key: str, now: float) -> RateDecision:
        item = self._item(rule)
        try:
            allowed = await self._limiter.hit(item, key)
            if allowed:
                return RateDecision(True, rule.limit, 0, 0.0)
            stats = await self._limiter.get_window_stats(item, key)
        except Exception as exc:
            # redis-py raises ConnectionError, TimeoutError and friends;
            # ``limits`` may wrap them. Any of them means "cannot count".
            raise Unavailable("the rate limiter is unavailable", retry_after=5) from exc
        return RateDecision(False, rule.limit, stats.remaining, max(0.0, stats.reset_time - now))

    async def close(self) -> None:
        """Release the connection pool."""
        # ``limits`` exposes no close(); its redis-py bridge hands out the client.
        get_connection = getattr(self._storage.bridge, "get_connection", None)
        if get_connection is not None:
            with contextlib.suppress(Exception):
                await get_connection().aclose()

    async def ping(self) -> None:
        """Raise :class:`Unavailable` if Redis does not answer."""
        try:
            ok = await self._storage.check()
        except Exception as exc:
            raise Unavailable("redis is unavailable") from exc
        if not ok:
            raise Unavailable("redis is unavailable")
