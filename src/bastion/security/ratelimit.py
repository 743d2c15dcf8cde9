"""An in-process moving-window rate limiter with a hard memory cap.

The blog post's limiter keeps a deque per client forever: memory grows with
every address ever seen. Here each client's window is a bounded deque of at
most ``limit`` timestamps, and the table of clients is an LRU of at most
``max_keys`` entries: when a new client arrives at a full table, the client
seen least recently is forgotten (it gets a fresh budget if it returns, the
documented price of the cap). Memory is therefore bounded by
``max_keys * (limit * 8 bytes + ~200 bytes)`` whatever the traffic.

The shared (Redis) limiter uses the ``limits`` library instead; this one
exists because the hot path must cost about a microsecond and have a cap,
which ``limits``' memory storage (a lock and list per key, no cap) lacks.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

#: Default cap on distinct clients tracked by one limiter.
DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one check.

    Attributes:
        allowed: Whether the request fits the budget (and was counted).
        limit: The budget per window.
        remaining: Requests left in the current window.
        reset_after: Seconds until a slot frees up (0 if some remain).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float


class MovingWindowLimiter:
    """``limit`` hits per ``window`` seconds per key, moving window.

    Args:
        limit: Hits allowed in any window.
        window: Window length in seconds.
        max_keys: Most keys remembered at once (LRU eviction past it).
    """

    __slots__ = ("_hits", "limit", "max_keys", "window")

    def __init__(self, limit: int, window: float, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str, now: float) -> RateDecision:
        """Count a hit for ``key`` at ``now`` if it fits; say whether it did."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._hits.popitem(last=False)
            hits = deque(maxlen=self.limit)
            self._hits[key] = hits
        else:
            self._hits.move_to_end(key)
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            return RateDecision(True, self.limit, self.limit - len(hits), 0.0)
        return RateDecision(False, self.limit, 0, hits[0] + self.window - now)

    def prune(self, now: float) -> None:
        """Drop keys whose windows are empty (idle clients cost nothing)."""
        cutoff = now - self.window
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
