"""Login throttling state kept in this process.

Each method runs without awaiting, so on the event loop it is atomic: a
reservation is checked and counted in one step. Memory is bounded: at most
``max_accounts`` accounts (each with at most ``max_clients_per_account``
client pairs) and ``max_clients`` buckets, least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bastion.security.throttle import (
    ACCOUNT_THRESHOLD,
    PAIR_THRESHOLD,
    BucketRule,
    BucketState,
    FailureRule,
    FailureState,
)
from bastion.storage.protocols import ThrottleKeys

DEFAULT_MAX_ACCOUNTS = 100_000
DEFAULT_MAX_CLIENTS_PER_ACCOUNT = 256
DEFAULT_MAX_CLIENTS = 100_000


@dataclass(slots=True)
class _Account:
    failures: FailureState = field(default_factory=FailureState)
    pairs: OrderedDict[str, FailureState] = field(default_factory=OrderedDict)


_V = TypeVar("_V")


def _touch(table: OrderedDict[str, _V], key: str, make: Callable[[], _V], limit: int) -> _V:
    entry = table.get(key)
    if entry is None:
        if len(table) >= limit:
            table.popitem(last=False)
        entry = make()
        table[key] = entry
    else:
        table.move_to_end(key)
    return entry


class MemoryLoginThrottle:
    """:class:`bastion.storage.protocols.LoginThrottleStore` in process.

    Args:
        account: The per-account rule.
        pair: The per-account-and-client rule.
        bucket: The per-client rule.
        max_accounts: Accounts remembered at once.
        max_clients_per_account: Client pairs remembered per account.
        max_clients: Client buckets remembered at once.
    """

    def __init__(
        self,
        account: FailureRule | None = None,
        pair: FailureRule | None = None,
        bucket: BucketRule | None = None,
        *,
        max_accounts: int = DEFAULT_MAX_ACCOUNTS,
        max_clients_per_account: int = DEFAULT_MAX_CLIENTS_PER_ACCOUNT,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        self.account_rule = account or FailureRule(ACCOUNT_THRESHOLD)
        self.pair_rule = pair or FailureRule(PAIR_THRESHOLD)
        self.bucket_rule = bucket or BucketRule()
        self._max_accounts = max_accounts
        self._max_pairs = max_clients_per_account
        self._max_clients = max_clients
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._buckets: OrderedDict[str, BucketState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._accounts) + len(self._buckets)

    async def reserve(self, keys: ThrottleKeys, now: float) -> float:
        account = _touch(self._accounts, keys.account, _Account, self._max_accounts)
        pair = _touch(account.pairs, keys.client, FailureState, self._max_pairs)
        bucket = None
        if keys.bucket:
            bucket = _touch(self._buckets, keys.client, BucketState, self._max_clients)
        wait = max(
            self.account_rule.wait(account.failures, now),
            self.pair_rule.wait(pair, now),
            self.bucket_rule.wait(bucket, now) if bucket is not None else 0.0,
        )
        if wait > 0:
            return wait
        self.account_rule.reserve(account.failures, now)
        self.pair_rule.reserve(pair, now)
        if bucket is not None:
            self.bucket_rule.reserve(bucket, now)
        return 0.0

    async def refund(self, keys: ThrottleKeys, now: float) -> None:
        account = self._accounts.get(keys.account)
        if account is not None:
            self.account_rule.refund(account.failures)
            pair = account.pairs.get(keys.client)
            if pair is not None:
                self.pair_rule.refund(pair)
        self._refund_bucket(keys, now)

    async def success(self, keys: ThrottleKeys, now: float) -> None:
        account = self._accounts.get(keys.account)
        if account is not None:
            account.failures = FailureState()
            account.pairs.pop(keys.client, None)
        self._refund_bucket(keys, now)

    def _refund_bucket(self, keys: ThrottleKeys, now: float) -> None:
        bucket = self._buckets.get(keys.client) if keys.bucket else None
        if bucket is not None:
            self.bucket_rule.refund(bucket, now)

    async def locked_until(self, account: str, now: float) -> float | None:
        entry = self._accounts.get(account)
        if entry is None or entry.failures.locked_until <= now:
            return None
        return entry.failures.locked_until

    async def unlock(self, account: str) -> None:
        self._accounts.pop(account, None)
