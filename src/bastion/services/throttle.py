"""Login throttling across three keys: the account, the account from one
client, and the client across accounts (credential stuffing)."""

from __future__ import annotations

from bastion.security.throttle import FailureThrottle

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
    """

    def __init__(self) -> None:
        self._account = FailureThrottle(threshold=ACCOUNT_THRESHOLD)
        self._pair = FailureThrottle(threshold=ACCOUNT_CLIENT_THRESHOLD)
        self._client = FailureThrottle(threshold=CLIENT_THRESHOLD)

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str, str]:
        account = username.casefold()[:64]
        return account, f"{account}|{client}", client

    def retry_after(self, username: str, client: str, now: float) -> float:
        """Seconds this attempt must wait (0: go ahead)."""
        account, pair, client_key = self._keys(username, client)
        return max(
            self._account.retry_after(account, now),
            self._pair.retry_after(pair, now),
            self._client.retry_after(client_key, now),
        )

    def failure(self, username: str, client: str, now: float) -> None:
        """Count a failed attempt."""
        account, pair, client_key = self._keys(username, client)
        self._account.failure(account, now)
        self._pair.failure(pair, now)
        self._client.failure(client_key, now)

    def success(self, username: str, client: str) -> None:
        """A success resets the account's counters (not the client's stuffing count)."""
        account, pair, _ = self._keys(username, client)
        self._account.success(account)
        self._pair.success(pair)
