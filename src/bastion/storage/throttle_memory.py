"""Login failure counters kept in this process."""

from __future__ import annotations

from bastion.security.throttle import FailureThrottle


class MemoryFailureCounter:
    """:class:`bastion.storage.protocols.FailureCounter` in process.

    Args:
        threshold: Failures allowed before the first delay.
    """

    def __init__(self, threshold: int) -> None:
        self._throttle = FailureThrottle(threshold=threshold)

    async def retry_after(self, key: str, now: float) -> float:
        return self._throttle.retry_after(key, now)

    async def failure(self, key: str, now: float) -> None:
        self._throttle.failure(key, now)

    async def success(self, key: str) -> None:
        self._throttle.success(key)
