"""Login throttling across three keys: the account, the account from one
client, and the client across accounts (credential stuffing)."""

from __future__ import annotations

import asyncio

from bastion.storage.protocols import FailureCounter
from bastion.storage.throttle_memory import MemoryFailureCounter

#: SPEC: throttling starts after at most 10 consecutive failures.
ACCOUNT_THRESHOLD = 10
#: One client failing on one account is throttled sooner.
ACCOUNT_CLIENT_THRESHOLD = 5
#: One client failing across many accounts: credential stuffing.
CLIENT_THRESHOLD = 20


class LoginThrottle:
    """Increasing delays after consecutive failed logins.

    Usernames are case-folded, so ``Alice`` and ``alice`` share a counter, and
    unknown usernames are counted exactly like known ones (the throttle never
    looks at whether the account exists).

    Args:
        account: Failures per account.
        pair: Failures per account and client.
        client: Failures per client across accounts.
    """

    def __init__(
        self,
        account: FailureCounter | None = None,
        pair: FailureCounter | None = None,
        client: FailureCounter | None = None,
    ) -> None:
        self._account = account or MemoryFailureCounter(ACCOUNT_THRESHOLD)
        self._pair = pair or MemoryFailureCounter(ACCOUNT_CLIENT_THRESHOLD)
        self._client = client or MemoryFailureCounter(CLIENT_THRESHOLD)

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str, str]:
        account = username.casefold()[:64]
        return account, f"{account}|{client}", client

    async def retry_after(self, username: str, client: str, now: float) -> float:
        """Seconds this attempt must wait (0: go ahead)."""
        account, pair, client_key = self._keys(username, client)
        waits = await asyncio.gather(
            self._account.retry_after(account, now),
            self._pair.retry_after(pair, now),
            self._client.retry_after(client_key, now),
        )
        return max(waits)

    async def failure(self, username: str, client: str, now: float) -> None:
        """Count a failed attempt."""
        account, pair, client_key = self._keys(username, client)
        await self._account.failure(account, now)
        await self._pair.failure(pair, now)
        await self._client.failure(client_key, now)

    async def success(self, username: str, client: str) -> None:
        """A success resets the account's counters (not the client's stuffing count)."""
        account, pair, _ = self._keys(username, client)
        await self._account.success(account)
        await self._pair.success(pair)
