"""Login failure counters shared by every instance through Redis.

The update is one Lua script, so concurrent failures on several instances
count exactly; keys expire on their own once quiet, so memory is bounded.
If Redis cannot be reached the counter falls back to a local one: the token
endpoint is already failing closed on its rate limit then.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.security.throttle import DEFAULT_FORGET_AFTER, MAX_DELAY_SECONDS
from bastion.storage.throttle_memory import MemoryFailureCounter

# Mirrors FailureThrottle.failure (bastion.security.throttle).
_FAILURE = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'count', 'last', 'locked')
local count = tonumber(state[1]) or 0
local last = tonumber(state[2]) or now
local locked = tonumber(state[3]) or 0
if now - last > forget then count = 0 end
count = count + 1
if count - threshold >= 0 then
  locked = now + math.min(max_delay, 2 ^ (count - threshold))
end
redis.call('HSET', KEYS[1], 'count', count, 'last', now, 'locked', locked)
redis.call('EXPIRE', KEYS[1], math.ceil(forget + max_delay))
return 1
"""


class RedisFailureCounter:
    """:class:`bastion.storage.protocols.FailureCounter` on Redis.

    Args:
        redis: The client.
        name: Namespace of this counter's keys.
        threshold: Failures allowed before the first delay.
    """

    def __init__(self, redis: Redis, name: str, threshold: int) -> None:
        self._redis = redis
        self._name = name
        self._threshold = threshold
        self._script = redis.register_script(_FAILURE)
        self._fallback = MemoryFailureCounter(threshold)

    def _key(self, key: str) -> str:
        # Hash: attacker-chosen usernames never become raw Redis key text.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"bastion:throttle:{self._name}:{digest}"

    async def retry_after(self, key: str, now: float) -> float:
        try:
            locked = await self._redis.hget(self._key(key), "locked")
        except (RedisError, OSError):
            return await self._fallback.retry_after(key, now)
        return max(0.0, float(locked) - now) if locked else 0.0

    async def failure(self, key: str, now: float) -> None:
        try:
            await self._script(
                keys=[self._key(key)],
                args=[now, self._threshold, MAX_DELAY_SECONDS, DEFAULT_FORGET_AFTER],
            )
        except (RedisError, OSError):
            await self._fallback.failure(key, now)

    async def success(self, key: str) -> None:
        try:
            await self._redis.delete(self._key(key))
        except (RedisError, OSError):
            await self._fallback.success(key)
