"""Logins that ignore ``Retry-After`` during a refusal flood wait for it.

A login refused with 429 (throttled) or 503 (the hash queue is full) is
answered at once (SPEC), with ``Retry-After``. A flooding client that retries
at once on its keep-alive connection gets the next refusal at once too, and
two hundred of them keep the event loop busy with nothing but refusals:
``/health`` then waits behind a whole round of them (W3 of issue 15: 0.9 s
p99 against 3.6 ms idle). So, while this instance is refusing logins faster
than :data:`FLOOD_REFUSALS_PER_SECOND`, the next login on a connection whose
client was just refused is held until the ``Retry-After`` it was given (at
most :data:`MAX_HOLD_SECONDS`). The refusal itself is never delayed; a client
that honours ``Retry-After`` never notices; another client behind the same
proxy connection is not held (the key is the connection and the client).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

#: Refusals per second above which this instance counts as flooded.
FLOOD_REFUSALS_PER_SECOND = 200
#: Longest hold of one request (seconds).
MAX_HOLD_SECONDS = 1.0
#: SPEC: nobody is asked to wait more than 60 s at a time.
MAX_RETRY_AFTER = 60
#: Connections remembered at once (least recently refused forgotten first).
MAX_CONNECTIONS = 10_000

_REFUSED = frozenset({429, 503})

Key = tuple[Any, str]


def retry_after_of(headers: Iterable[tuple[bytes, bytes]]) -> float:
    """The ``Retry-After`` seconds of a response (its delay form), or 1."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return 1.0
    return 1.0


class RetryPacing:
    """Holds back retries that came before their ``Retry-After``, under a flood.

    Args:
        flood_rate: Refusals per second that make a flood.
        max_hold: Longest hold in seconds.
        max_connections: Connections remembered.
        clock: Monotonic seconds.
        jitter: Uniform in [0, 1) (a test pins it).
    """

    def __init__(
        self,
        *,
        flood_rate: int = FLOOD_REFUSALS_PER_SECOND,
        max_hold: float = MAX_HOLD_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.flood_rate = flood_rate
        self.max_hold = max_hold
        self.max_connections = max_connections
        self._clock = clock
        self._jitter = jitter
        self._until: OrderedDict[Key, float] = OrderedDict()
        # Refusals counted in the current and the previous whole second.
        self._second = -1
        self._this_second = 0
        self._last_second = 0

    def _count(self, now: float) -> None:
        second = math.floor(now)
        if second != self._second:
            self._last_second = self._this_second if second == self._second + 1 else 0
            self._this_second = 0
            self._second = second
        self._this_second += 1

    def flooded(self, now: float) -> bool:
        """Whether refusals came faster than ``flood_rate`` over the last second."""
        second = math.floor(now)
        if second == self._second:
            recent = self._this_second + self._last_second * (1 - (now - second))
        elif second == self._second + 1:
            recent = self._this_second * (1 - (now - second))
        else:
            recent = 0
        return recent > self.flood_rate

    def delay(self, key: Key) -> float:
        """Seconds the next login of ``key`` waits (0: none)."""
        until = self._until.pop(key, None)
        if until is None:
            return 0.0
        now = self._clock()
        if until <= now or not self.flooded(now):
            return 0.0
        return until - now

    async def hold(self, key: Key) -> None:
        """Wait out :meth:`delay`."""
        wait = self.delay(key)
        if wait > 0:
            await asyncio.sleep(wait)

    def answered(
        self, key: Key, status: int, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """Note how a login of ``key`` was answered; the headers to send.

        Under a flood a refusal's ``Retry-After`` is spread over one more
        second (never past 60 s): clients that honour it would otherwise all
        come back in the same instant, refused in one round, and wait in step
        again, a herd that keeps the loop busy in bursts.
        """
        if status not in _REFUSED:
            return headers
        now = self._clock()
        self._count(now)
        if self.flooded(now):
            headers = [self._spread(name, value) for name, value in headers]
        # Spread over the second half of the hold: clients refused together
        # must not all come back together (a burst is what the hold avoids).
        hold = min(self.max_hold, retry_after_of(headers)) * (0.5 + self._jitter() / 2)
        self._until[key] = now + hold
        self._until.move_to_end(key)
        if len(self._until) > self.max_connections:
            self._until.popitem(last=False)
        return headers

    def _spread(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name.lower() != b"retry-after" or not value.isdigit():
            return name, value
        seconds = min(MAX_RETRY_AFTER, int(value) + (self._jitter() < 0.5))
        return name, str(seconds).encode()
