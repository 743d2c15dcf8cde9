"""A bounded pool of password-hashing threads with load shedding.

Hashing is deliberately slow. Run on the event loop, one hash stalls every
request; run through ``run_in_executor(None, ...)`` as the blog post does, a
flood queues without bound and memory grows with it. Here a few threads hash,
a bounded number of callers wait, and the rest are refused at once with
:class:`~bastion.errors.Overloaded` so the caller can answer 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bastion.errors import Overloaded

T = TypeVar("T")


#: Niceness added to hashing threads (Linux schedules threads one by one).
HASH_THREAD_NICENESS = 10


def default_workers() -> int:
    """One hashing thread per CPU this process may run on: argon2 and bcrypt
    release the GIL, so more threads than CPUs only add waiting."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _lower_priority() -> None:
    # Hashing is bulk work; the event loop answers every other request. With
    # the hashing threads niced, a login flood cannot starve /health or token
    # checks of CPU (the scheduler prefers the loop's thread).
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


class HashPool:
    """Runs blocking hash calls on a fixed set of threads, admitting a bounded queue.

    Args:
        workers: Hashing threads.
        max_waiting: Calls allowed to wait for a thread; one more is shed.
    """

    def __init__(self, workers: int | None = None, max_waiting: int = 64) -> None:
        self.workers = workers or default_workers()
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(
            self.workers, thread_name_prefix="bastion-hash", initializer=_lower_priority
        )
        self._admitted = 0
        #: Called (on the hashing thread) with each call's seconds spent
        #: waiting for a thread; a metric.
        self.on_wait: Callable[[float], None] | None = None

    @property
    def in_flight(self) -> int:
        """Calls hashing or waiting now."""
        return self._admitted

    def admit(self) -> None:
        """Raise :class:`Overloaded` now if a hash would be refused.

        Called before the work that leads up to hashing (a database lookup,
        form parsing), so a shed request costs as little as possible.
        """
        if self._admitted >= self.workers + self.max_waiting:
            raise Overloaded("too many logins in progress, retry shortly", retry_after=1)

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` on a hashing thread.

        Raises:
            Overloaded: when every thread is busy and the wait queue is full.
        """
        self.admit()
        self._admitted += 1
        submitted = time.perf_counter()
        on_wait = self.on_wait

        def timed() -> T:
            if on_wait is not None:
                on_wait(time.perf_counter() - submitted)
            return func(*args)

        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, timed)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stop the threads after the queued calls finish."""
        self._executor.shutdown(wait=True, cancel_futures=True)
