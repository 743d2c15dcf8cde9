"""Login throttling: which keys an attempt counts against, and the store.

Three keys (SPEC, "Login throttling that attackers cannot turn against
users"): the account (case-folded, known or unknown alike: the throttle never
looks at whether the account exists), the account from one client, and the
client across accounts (a leaky bucket against credential stuffing, from
which ``BASTION_THROTTLE_EXEMPT`` networks are spared). Clients are keyed as
the rate limiter keys them, IPv6 by its /64, so rotating addresses inside
one /64 resets nothing (issue 17 #10).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from bastion.security.clientip import Network, rate_limit_key
from bastion.storage.protocols import LoginThrottleStore, ThrottleKeys
from bastion.storage.throttle_memory import MemoryLoginThrottle

#: Longest account key: usernames are at most 20 characters, longer input is
#: nobody, and must not grow the tables.
_MAX_ACCOUNT_KEY = 64


class LoginThrottle:
    """Reserve, refund and reset login attempts.

    Args:
        store: Where the counts live (in process, or Redis for every instance).
        exempt: Networks spared the per-client bucket (not the account rules).
    """

    def __init__(
        self, store: LoginThrottleStore | None = None, *, exempt: Sequence[Network] = ()
    ) -> None:
        self.store: LoginThrottleStore = store or MemoryLoginThrottle()
        self._exempt = tuple(exempt)
        self._is_exempt = lru_cache(maxsize=4096)(self._check_exempt)

    @staticmethod
    def account_key(username: str) -> str:
        """The account's key: ``Alice`` and ``alice`` share one counter."""
        return username.casefold()[:_MAX_ACCOUNT_KEY]

    def _check_exempt(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)

    def keys(self, username: str, client: str | None) -> ThrottleKeys:
        """The keys an attempt on ``username`` from ``client`` counts against."""
        client = client or "unknown"
        exempt = bool(self._exempt) and self._is_exempt(client)
        return ThrottleKeys(self.account_key(username), rate_limit_key(client), not exempt)

    async def reserve(self, keys: ThrottleKeys, now: float) -> float:
        """Count the attempt before verifying it; seconds to wait if refused."""
        return await self.store.reserve(keys, now)

    async def refund(self, keys: ThrottleKeys, now: float) -> None:
        """The password was right but the login is not complete: not a failure."""
        await self.store.refund(keys, now)

    async def success(self, keys: ThrottleKeys, now: float) -> None:
        """A completed login resets the account's counters."""
        await self.store.success(keys, now)

    async def locked_until(self, username: str, now: float) -> float | None:
        """Until when ``username``'s account is locked, or ``None``."""
        return await self.store.locked_until(self.account_key(username), now)

    async def unlock(self, username: str) -> None:
        """Lift ``username``'s lock (an admin's decision)."""
        await self.store.unlock(self.account_key(username))
