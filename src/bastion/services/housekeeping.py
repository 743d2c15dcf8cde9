"""Housekeeping: nothing Bastion stores grows without bound (SPEC, "Housekeeping").

Each kind of row that outlives its use has a :class:`Pruner`, which removes
at most ``batch`` such rows per call, each call its own short transaction,
so pruning never holds locks long enough to stall requests. A
:class:`Housekeeper` runs its pruners in turn until each has nothing left
(or, in the background, until a run's budget of batches is spent), and with
several instances on PostgreSQL only the one holding the housekeeping lock
runs at a time.

New stores add their own step: a pruner is any object with a ``name`` and
``async def prune(now, batch) -> int``; append it to
:attr:`Housekeeper.pruners` in ``bastion.bootstrap``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from bastion.errors import Unavailable
from bastion.types import Clock

#: Rows removed per statement (and transaction).
BATCH_SIZE = 500
#: Batches one background run removes per pruner at most; a larger backlog
#: is worked off over the next runs rather than in one long burst.
MAX_BATCHES_PER_RUN = 200
#: Pause between batches, so requests get the database in between.
BATCH_PAUSE_SECONDS = 0.05

log = logging.getLogger("bastion.housekeeping")


class Pruner(Protocol):
    """Removes rows of one kind that can no longer matter."""

    @property
    def name(self) -> str:
        """The kind, as reported by ``bastion prune`` (``"events"``...)."""
        ...

    async def prune(self, now: float, batch: int) -> int:
        """Remove at most ``batch`` rows that are obsolete at ``now``; how many.

        Raises:
            Unavailable: the store cannot be reached.
        """
        ...


class RunLock(Protocol):
    """Lets one instance at a time do the housekeeping."""

    def hold(self) -> AbstractAsyncContextManager[bool]:
        """Try to take the lock for the ``async with`` body; ``True`` if taken."""
        ...


class Housekeeper:
    """Runs :class:`Pruner` steps in small batches.

    Args:
        pruners: The steps, run in this order.
        clock: Time source.
        lock: Taken around background runs (none: always run).
        batch: Rows per ``prune`` call.
        max_batches: Batches per pruner in one background run.
        pause: Seconds between batches.
    """

    def __init__(
        self,
        pruners: Sequence[Pruner],
        clock: Clock,
        *,
        lock: RunLock | None = None,
        batch: int = BATCH_SIZE,
        max_batches: int = MAX_BATCHES_PER_RUN,
        pause: float = BATCH_PAUSE_SECONDS,
    ) -> None:
        if batch < 1 or max_batches < 1:
            raise ValueError("batch and max_batches must be at least 1")
        #: The steps; other stores append theirs.
        self.pruners: list[Pruner] = list(pruners)
        self._clock = clock
        self._lock = lock
        self._batch = batch
        self._max_batches = max_batches
        self._pause = pause

    async def prune_all(self, *, max_batches: int | None = None) -> dict[str, int]:
        """Run every pruner until it has nothing left (or ``max_batches`` each).

        Returns:
            Rows removed per pruner name.

        Raises:
            Unavailable: the database cannot be reached.
        """
        removed: dict[str, int] = {}
        for pruner in self.pruners:
            removed[pruner.name] = removed.get(pruner.name, 0) + await self._drain(
                pruner, max_batches
            )
        return removed

    async def run(self) -> dict[str, int] | None:
        """One background run under the lock; ``None`` if another instance holds it."""
        if self._lock is None:
            return await self.prune_all(max_batches=self._max_batches)
        async with self._lock.hold() as taken:
            if not taken:
                return None
            return await self.prune_all(max_batches=self._max_batches)

    async def _drain(self, pruner: Pruner, max_batches: int | None) -> int:
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            try:
                count = await pruner.prune(self._clock.now(), self._batch)
            except Unavailable:
                raise
            except Exception:
                # One broken step must not keep the others from running.
                log.exception("housekeeping step %s failed", pruner.name)
                break
            total += count
            batches += 1
            if count < self._batch:
                break
            await asyncio.sleep(self._pause)
        return total


@dataclass(frozen=True, slots=True)
class PruneStep:
    """A :class:`Pruner` made of a store method with its own signature.

    Attributes:
        name: The kind, as ``bastion prune`` reports it.
        run: Removes at most ``batch`` obsolete rows at ``now``; how many.
    """

    name: str
    run: Callable[[float, int], Awaitable[int]]

    async def prune(self, now: float, batch: int) -> int:
        """Run the step."""
        return await self.run(now, batch)
