"""A bounded pool of password-hashing threads with load shedding.

Hashing is deliberately slow. Run on the event loop, one hash stalls every
request; run through ``run_in_executor(None, ...)`` as the blog post does, a
flood queues without bound and memory grows with it. Here a few threads hash,
a bounded number of callers wait, and the rest are refused at once with
:class:`~bastion.errors.Overloaded` so the caller can answer 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bastion.errors import Overloaded

T = TypeVar("T")


def default_workers() -> int:
    """One hashing thread per CPU: argon2 and bcrypt release the GIL."""
    return max(1, os.cpu_count() or 1)


class HashPool:
    """Runs blocking hash calls on a fixed set of threads, admitting a bounded queue.

    Args:
        workers: Hashing threads.
        max_waiting: Calls allowed to wait for a thread; one more is shed.
    """

    def __init__(self, workers: int | None = None, max_waiting: int = 64) -> None:
        self.workers = workers or default_workers()
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="bastion-hash")
        self._admitted = 0

    @property
    def in_flight(self) -> int:
        """Calls hashing or waiting now."""
        return self._admitted

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` on a hashing thread.

        Raises:
            Overloaded: when every thread is busy and the wait queue is full.
        """
        if self._admitted >= self.workers + self.max_waiting:
            raise Overloaded("too many logins in progress, retry shortly", retry_after=1)
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, func, *args)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stop the threads after the queued calls finish."""
        self._executor.shutdown(wait=True, cancel_futures=True)
