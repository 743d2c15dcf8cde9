"""Login throttling state shared by every instance through Redis.

Each operation is one Lua script, so a reservation is checked and counted
atomically even with many instances reserving at once (Redis runs scripts
one at a time). An account's counter and its per-client pairs live in one
hash, so an admin's unlock clears them all with one ``DEL``; each client's
bucket is a hash of its own. Keys expire on their own once quiet, so memory
is bounded. If Redis cannot be reached the store falls back to a local one:
the token endpoint is already failing closed on its rate limit then.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.errors import Unavailable
from bastion.storage.protocols import ThrottleKeys
from bastion.storage.throttle_memory import MemoryLoginThrottle

# Mirrors bastion.security.throttle: FailureRule.wait/reserve on the account
# fields (c, l, t) and the pair fields (prefix ARGV[6]), BucketRule.wait/reserve
# on KEYS[2]. Redis truncates numbers returned by Lua, hence tostring.
_RESERVE = """
local now = tonumber(ARGV[1])
local athreshold, pthreshold = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_delay, forget = tonumber(ARGV[4]), tonumber(ARGV[5])
local p = ARGV[6]
local use_bucket = ARGV[7] == '1'
local capacity, drain = tonumber(ARGV[8]), tonumber(ARGV[9])
local s = redis.call('HMGET', KEYS[1], 'c', 'l', 't', p .. 'c', p .. 'l', p .. 't')
local ac, al, at = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
local pc, pl, pt = tonumber(s[4]) or 0, tonumber(s[5]) or 0, tonumber(s[6]) or 0
local wait = math.max(0, al - now, pl - now)
local level = 0
if use_bucket then
  local b = redis.call('HMGET', KEYS[2], 'v', 'u')
  level = tonumber(b[1]) or 0
  local updated = tonumber(b[2]) or now
  level = math.max(0, level - math.max(0, now - updated) / drain)
  wait = math.max(wait, (level + 1 - capacity) * drain)
end
if wait > 0 then return tostring(wait) end
local function count(c, l, t, threshold)
  if now - t > forget then c = 0 end
  c = c + 1
  if c - threshold >= 0 then l = now + math.min(max_delay, 2 ^ (c - threshold)) end
  return c, l
end
ac, al = count(ac, al, at, athreshold)
pc, pl = count(pc, pl, pt, pthreshold)
redis.call('HSET', KEYS[1], 'c', ac, 'l', al, 't', now, p .. 'c', pc, p .. 'l', pl, p .. 't', now)
redis.call('EXPIRE', KEYS[1], math.ceil(forget + max_delay))
if use_bucket then
  redis.call('HSET', KEYS[2], 'v', level + 1, 'u', now)
  redis.call('EXPIRE', KEYS[2], math.ceil(capacity * drain))
end
return '0'
"""

# FailureRule.refund on both counters (ARGV[5] = 1) or a reset of both
# (ARGV[5] = 0, a completed login); BucketRule.refund on KEYS[2] either way.
_GIVE_BACK = """
local now = tonumber(ARGV[1])
local athreshold, pthreshold = tonumber(ARGV[2]), tonumber(ARGV[3])
local p = ARGV[4]
if ARGV[5] == '1' then
  local s = redis.call('HMGET', KEYS[1], 'c', p .. 'c')
  local ac = math.max(0, (tonumber(s[1]) or 0) - 1)
  local pc = math.max(0, (tonumber(s[2]) or 0) - 1)
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], 'c', ac, p .. 'c', pc)
    if ac < athreshold then redis.call('HSET', KEYS[1], 'l', 0) end
    if pc < pthreshold then redis.call('HSET', KEYS[1], p .. 'l', 0) end
  end
else
  redis.call('HDEL', KEYS[1], 'c', 'l', 't', p .. 'c', p .. 'l', p .. 't')
end
if ARGV[6] == '1' then
  local b = redis.call('HMGET', KEYS[2], 'v', 'u')
  if b[1] then
    local drain = tonumber(ARGV[7])
    local level = tonumber(b[1]) - math.max(0, now - (tonumber(b[2]) or now)) / drain
    redis.call('HSET', KEYS[2], 'v', math.max(0, level - 1), 'u', now)
  end
end
return 1
"""


def _digest(text: str) -> str:
    # Hash: attacker-chosen usernames never become raw Redis key text.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RedisLoginThrottle:
    """:class:`bastion.storage.protocols.LoginThrottleStore` on Redis.

    Args:
        redis: The client.
        local: The rules, and the fallback while Redis is unreachable.
    """

    def __init__(self, redis: Redis, local: MemoryLoginThrottle | None = None) -> None:
        self._redis = redis
        self._local = local or MemoryLoginThrottle()
        self._reserve = redis.register_script(_RESERVE)
        self._give_back = redis.register_script(_GIVE_BACK)

    @staticmethod
    def _account_key(account: str) -> str:
        return f"bastion:throttle:account:{_digest(account)}"

    def _keys(self, keys: ThrottleKeys) -> tuple[list[str], str]:
        bucket = f"bastion:throttle:client:{_digest(keys.client)}"
        return [self._account_key(keys.account), bucket], f"p:{_digest(keys.client)}:"

    async def reserve(self, keys: ThrottleKeys, now: float) -> float:
        names, pair = self._keys(keys)
        local = self._local
        args: list[str | int | float] = [
            now,
            local.account_rule.threshold,
            local.pair_rule.threshold,
            local.account_rule.max_delay,
            local.account_rule.forget_after,
            pair,
            int(keys.bucket),
            local.bucket_rule.capacity,
            local.bucket_rule.drain_seconds,
        ]
        try:
            wait = await self._reserve(keys=names, args=args)
        except (RedisError, OSError):
            return await self._local.reserve(keys, now)
        return max(0.0, float(wait))

    async def _return(self, keys: ThrottleKeys, now: float, *, refund: bool) -> None:
        names, pair = self._keys(keys)
        local = self._local
        args: list[str | int | float] = [
            now,
            local.account_rule.threshold,
            local.pair_rule.threshold,
            pair,
            int(refund),
            int(keys.bucket),
            local.bucket_rule.drain_seconds,
        ]
        try:
            await self._give_back(keys=names, args=args)
        except (RedisError, OSError):
            if refund:
                await self._local.refund(keys, now)
            else:
                await self._local.success(keys, now)

    async def refund(self, keys: ThrottleKeys, now: float) -> None:
        await self._return(keys, now, refund=True)

    async def success(self, keys: ThrottleKeys, now: float) -> None:
        await self._return(keys, now, refund=False)

    async def locked_until(self, account: str, now: float) -> float | None:
        try:
            locked = await self._redis.hget(self._account_key(account), "l")
        except (RedisError, OSError):
            return await self._local.locked_until(account, now)
        until = float(locked) if locked else 0.0
        return until if until > now else None

    async def unlock(self, account: str) -> None:
        await self._local.unlock(account)
        try:
            await self._redis.delete(self._account_key(account))
        except (RedisError, OSError) as exc:
            raise Unavailable() from exc
