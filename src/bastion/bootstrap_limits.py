"""The per-client budgets and login throttles an instance is built with.

In process by default; with ``BASTION_REDIS_URL`` the general budget is
counted locally and synchronised in batches, the login and registration
budgets and the throttles are exact in Redis (``storage/limits_batched``,
``storage/throttle_redis``).
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import parse
from redis.asyncio import Redis

from bastion.config import Settings
from bastion.services.throttle import LoginThrottle
from bastion.storage.limits_batched import BatchedRedisRateLimitStore
from bastion.storage.limits_memory import MemoryRateLimitStore
from bastion.storage.protocols import RateRule
from bastion.storage.throttle_redis import RedisLoginThrottle


def rate_rule(name: str, rate: str, *, fail_closed: bool = False) -> RateRule:
    """A :class:`RateRule` from ``limits`` notation (``"100/minute"``)."""
    item = parse(rate)
    return RateRule(name, item.amount, item.get_expiry(), fail_closed)


@dataclass(frozen=True)
class RateRules:
    """The three per-client budgets of SPEC."""

    default: RateRule
    login: RateRule
    register: RateRule

    @classmethod
    def of(cls, settings: Settings) -> RateRules:
        """The rules configured in ``settings``."""
        return cls(
            default=rate_rule("default", settings.rate_limit),
            login=rate_rule("login", settings.login_rate_limit, fail_closed=True),
            register=rate_rule("register", settings.register_rate_limit, fail_closed=True),
        )


@dataclass(frozen=True)
class LimitParts:
    """The rate limit stores of one instance.

    Attributes:
        local: The in-process store (the fallback when Redis is down).
        redis: The shared store, when Redis is configured.
    """

    local: MemoryRateLimitStore
    redis: BatchedRedisRateLimitStore | None

    @classmethod
    def of(cls, settings: Settings) -> LimitParts:
        """The stores ``settings`` ask for."""
        # The general budget counts locally and syncs in batches; login and
        # registration budgets stay exact (limits_batched).
        redis = BatchedRedisRateLimitStore(settings.redis_url) if settings.redis_url else None
        return cls(MemoryRateLimitStore(), redis)


def build_throttle(client: Redis | None, settings: Settings) -> LoginThrottle:
    """Login throttling: in process, or shared through Redis when configured."""
    store = RedisLoginThrottle(client) if client is not None else None
    return LoginThrottle(store, exempt=settings.throttle_exempt)
