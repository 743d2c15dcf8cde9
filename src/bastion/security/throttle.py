"""Per-account login throttling: increasing delays after repeated failures.

After ``threshold`` consecutive failures for a key, each further failure
locks the key for twice as long as the previous one, from one second up to
``max_delay`` (60 s): brute force slows to a crawl, but nobody, attacker
included, can lock an account for good (OWASP Authentication Cheat Sheet,
"Account Lockout"). A success resets the key. The table is an LRU of at most
``max_keys`` keys, so memory is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_THRESHOLD = 5
MAX_DELAY_SECONDS = 60.0
DEFAULT_MAX_KEYS = 100_000
#: A key quiet for this long starts counting afresh.
DEFAULT_FORGET_AFTER = 900.0


@dataclass(slots=True)
class _Failures:
    count: int
    locked_until: float
    last_failure: float


class FailureThrottle:
    """Counts consecutive failures per key and imposes increasing delays.

    Args:
        threshold: Failures allowed before the first delay (at most 10 per SPEC).
        max_delay: Longest single delay in seconds.
        max_keys: Most keys remembered at once.
        forget_after: Seconds without a failure after which a key starts afresh.
    """

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        max_delay: float = MAX_DELAY_SECONDS,
        max_keys: int = DEFAULT_MAX_KEYS,
        forget_after: float = DEFAULT_FORGET_AFTER,
    ) -> None:
        self.threshold = threshold
        self.max_delay = max_delay
        self.max_keys = max_keys
        self.forget_after = forget_after
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds ``key`` must still wait (0 when it may try)."""
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.locked_until - now)

    def failure(self, key: str, now: float) -> float:
        """Record a failure; return the delay it imposes (0 below the threshold)."""
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
            entry = _Failures(0, 0.0, now)
            self._keys[key] = entry
        else:
            self._keys.move_to_end(key)
            if now - entry.last_failure > self.forget_after:
                entry.count = 0
        entry.count += 1
        entry.last_failure = now
        over = entry.count - self.threshold
        if over < 0:
            return 0.0
        delay = min(self.max_delay, 2.0**over)
        entry.locked_until = now + delay
        return delay

    def success(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._keys.pop(key, None)
