"""Rate limits kept in this process, with a memory cap per rule."""

from __future__ import annotations

from bastion.security.ratelimit import DEFAULT_MAX_KEYS, MovingWindowLimiter, RateDecision
from bastion.storage.protocols import RateRule


class MemoryRateLimitStore:
    """:class:`bastion.storage.protocols.RateLimitStore` in process.

    Args:
        max_keys: Clients remembered per rule (least recently seen forgotten first).
    """

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._limiters: dict[str, MovingWindowLimiter] = {}

    def limiter(self, rule: RateRule) -> MovingWindowLimiter:
        """The limiter behind ``rule``."""
        limiter = self._limiters.get(rule.name)
        if limiter is None:
            limiter = MovingWindowLimiter(rule.limit, rule.window, self.max_keys)
            self._limiters[rule.name] = limiter
        return limiter

    async def hit(self, rule: RateRule, key: str, now: float) -> RateDecision:
        return self.limiter(rule).hit(key, now)

    def prune(self, now: float) -> None:
        """Drop idle clients of every rule."""
        for limiter in self._limiters.values():
            limiter.prune(now)
