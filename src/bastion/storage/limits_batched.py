"""The general per-client budget shared through Redis without a round trip per request.

Counting every request with one Redis script (``limits``' moving window)
costs a loopback round trip on the hot path: W1 on PostgreSQL + Redis fell to
~65 % of SQLite (issue 15). Here each instance counts locally and
synchronises in batches:

- A hit is admitted **locally** only when this instance knows the key's
  global count from a synchronisation less than :data:`FRESH_FOR` sync
  intervals old, holds fewer than ``burst`` unsynchronised hits for it, and
  the known count plus those hits is more than ``margin`` below the limit.
- Otherwise (a new client, a stale count, a client close to its limit, a full
  local batch) the hit is decided **exactly**: one atomic Lua script adds the
  local batch and, if the window still has room, the hit.
- Every ``sync_interval`` seconds (25 ms) one pipelined round trip adds every
  key's local batch to its Redis sorted set and returns the fresh counts.
- Hits of one key that need an exact decision while another is being made
  wait for it and then decide again, so one client on many connections costs
  one round trip, not one per connection.

**Over-admission bound.** Between two synchronisations of a key an instance
admits at most ``burst`` hits that the others do not know of, and its own view
of the others is at most ``FRESH_FOR`` intervals old; so with ``N`` instances
a key is admitted at most ``N * burst * (FRESH_FOR + 1)`` times beyond its
limit in any window, where ``burst = max(4, limit // 1000)``: 24 for the
default 100/minute on two instances (and in practice none, since the local
path stops ``margin`` hits short of the limit), about 0.3 % of the limit per
instance for large limits. A client near its limit is always decided exactly.

Only rules that may fail open use this (the general budget); the login and
registration budgets (``fail_closed``) stay exact: every hit is one atomic
script, as in :class:`RedisRateLimitStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bastion.errors import Unavailable
from bastion.security.ratelimit import DEFAULT_MAX_KEYS, RateDecision
from bastion.storage.limits_redis import REDIS_TIMEOUT_SECONDS, RedisRateLimitStore
from bastion.storage.protocols import RateRule

log = logging.getLogger("bastion")

#: How often local batches are written to Redis (seconds).
SYNC_INTERVAL = 0.025
#: A known global count is used for local decisions this many intervals long.
FRESH_FOR = 2
#: Smallest local batch per key between synchronisations.
MIN_BURST = 4
#: Smallest distance from the limit below which hits are decided exactly.
MIN_MARGIN = 16

# KEYS[1]: the key's sorted set. ARGV: now, window, limit (-1: add only),
# member prefix, then the batch's timestamps. Adds the batch, then the hit if
# it fits; returns {admitted (0/1), count, oldest timestamp or -1}.
_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local prefix = ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
for i = 5, #ARGV do
  local at = tonumber(ARGV[i])
  if at > now - window then
    redis.call('ZADD', KEYS[1], at, prefix .. ':' .. i)
  end
end
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if limit >= 0 and count < limit then
  redis.call('ZADD', KEYS[1], now, prefix .. ':hit')
  count = count + 1
  admitted = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  return {admitted, count, oldest[2]}
end
return {admitted, count, '-1'}
"""


def burst_of(rule: RateRule) -> int:
    """Most unsynchronised local hits per key between two synchronisations."""
    return max(MIN_BURST, rule.limit // 1000)


def margin_of(rule: RateRule) -> int:
    """Hits short of the limit below which a key is decided exactly."""
    return max(MIN_MARGIN, rule.limit // 50)


def over_admission_bound(rule: RateRule, instances: int) -> int:
    """The most hits ``instances`` instances admit beyond ``rule.limit`` in a window."""
    return instances * burst_of(rule) * (FRESH_FOR + 1)


@dataclass(slots=True)
class _Entry:
    rule: RateRule
    redis_key: str
    known: int = 0
    known_at: float = -math.inf
    pending: list[float] = field(default_factory=list)
    deciding: asyncio.Future[bool] | None = None


class BatchedRedisRateLimitStore(RedisRateLimitStore):
    """:class:`RedisRateLimitStore` whose fail-open rules count locally and sync in batches.

    Args:
        url: ``redis://host:port/db``.
        sync_interval: Seconds between synchronisations.
        max_keys: Keys tracked locally (least recently used forgotten first).
        key_prefix: Prefix of the Redis keys.
    """

    def __init__(
        self,
        url: str,
        *,
        sync_interval: float = SYNC_INTERVAL,
        max_keys: int = DEFAULT_MAX_KEYS,
        key_prefix: str = "bastion:gl",
    ) -> None:
        super().__init__(url)
        self.sync_interval = sync_interval
        self.max_keys = max_keys
        self.key_prefix = key_prefix
        #: Redis round trips made by the batched path (hits and syncs), for tests and bench.
        self.round_trips = 0
        self._redis = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._script = self._redis.register_script(_SCRIPT)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._instance = os.urandom(6).hex()
        self._serial = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._loop_time = 0.0

    async def hit(self, rule: RateRule, key: str, now: float) -> RateDecision:
        if rule.fail_closed:
            return await super().hit(rule, key, now)
        self._ensure_syncing()
        entry = self._entry(rule, key)
        fresh = now - entry.known_at < self.sync_interval * FRESH_FOR
        estimate = entry.known + len(entry.pending)
        if (
            fresh
            and len(entry.pending) < burst_of(rule)
            and rule.limit - estimate > margin_of(rule)
        ):
            entry.pending.append(now)
            return RateDecision(True, rule.limit, rule.limit - estimate - 1, 0.0)
        if entry.deciding is not None:
            # Another hit of this key is already asking Redis: its answer
            # refreshes the count, so wait for it rather than send a round
            # trip of our own (32 connections of one client sent 32 at once,
            # a third of W1's time on PostgreSQL + Redis, issue 15).
            if not await asyncio.shield(entry.deciding):
                raise Unavailable("the rate limiter is unavailable", retry_after=5)
            return await self.hit(rule, key, now)
        deciding = entry.deciding = asyncio.get_running_loop().create_future()
        answered = False
        try:
            decision = await self._exact(entry, now)
            answered = True
            return decision
        finally:
            # Waiters learn only whether Redis answered: if it did not, they
            # fail at once too instead of each waiting for a timeout in turn.
            entry.deciding = None
            deciding.set_result(answered)

    def _entry(self, rule: RateRule, key: str) -> _Entry:
        name = f"{rule.name}|{key}"
        entry = self._entries.get(name)
        if entry is None:
            if len(self._entries) >= self.max_keys:
                self._evict()
            # The budget is part of the key (as in ``limits``): a changed limit
            # starts a fresh window rather than inheriting one counted for another.
            redis_key = f"{self.key_prefix}:{rule.name}:{rule.limit}/{rule.window}:{key}"
            entry = _Entry(rule, redis_key)
            self._entries[name] = entry
        else:
            self._entries.move_to_end(name)
        return entry

    def _evict(self) -> None:
        # Forget the least recently used key without pending hits; a key with
        # pending hits is kept until they are written (at most one sweep).
        for name, entry in self._entries.items():
            if not entry.pending:
                del self._entries[name]
                return
        self._entries.popitem(last=False)

    def _args(self, entry: _Entry, batch: list[float], now: float, limit: int) -> list[Any]:
        member = f"{self._instance}:{next(self._serial)}"
        return [repr(now), repr(entry.rule.window), limit, member, *map(repr, batch)]

    async def _exact(self, entry: _Entry, now: float) -> RateDecision:
        batch, entry.pending = entry.pending, []
        try:
            self.round_trips += 1
            admitted, count, oldest = await self._script(
                keys=[entry.redis_key], args=self._args(entry, batch, now, entry.rule.limit)
            )
        except Exception as exc:
            entry.pending = batch + entry.pending
            raise Unavailable("the rate limiter is unavailable", retry_after=5) from exc
        entry.known, entry.known_at = int(count), now
        rule = entry.rule
        if int(admitted):
            return RateDecision(True, rule.limit, max(0, rule.limit - int(count)), 0.0)
        oldest_at = float(oldest)
        reset = oldest_at + rule.window - now if oldest_at >= 0 else rule.window
        return RateDecision(False, rule.limit, 0, max(0.0, reset))

    def _ensure_syncing(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sync_forever(), name="bastion-limits-sync")

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except Unavailable:
                continue
            except Exception:
                log.exception("rate limit sync failed")

    async def sync(self, now: float | None = None) -> int:
        """Write every local batch in one pipelined round trip; the keys written.

        Raises:
            Unavailable: when Redis does not answer (the batches are kept).
        """
        import time

        now = time.time() if now is None else now
        batches = [(entry, entry.pending) for entry in self._entries.values() if entry.pending]
        if not batches:
            return 0
        for entry, _ in batches:
            entry.pending = []
        try:
            # As a context manager the pipeline gives its connection back
            # even when Redis is down (no unclosed session left to the GC).
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry, batch in batches:
                    await self._script(
                        keys=[entry.redis_key], args=self._args(entry, batch, now, -1), client=pipe
                    )
                self.round_trips += 1
                results = await pipe.execute()
        except Exception as exc:
            for entry, batch in batches:
                entry.pending = batch + entry.pending
            raise Unavailable("the rate limiter is unavailable", retry_after=5) from exc
        for (entry, _), (_, count, _) in zip(batches, results, strict=True):
            entry.known, entry.known_at = int(count), now
        return len(batches)

    async def close(self) -> None:
        """Write what is pending (best effort), stop syncing, release connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.sync()
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        await super().close()
