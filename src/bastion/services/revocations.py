"""Keeping this instance's revocation list in step with the durable log.

Every instance polls the ``revocations`` table (and, with Redis, hears marks
at once). A cursor at the highest id seen is not enough on PostgreSQL: ids
are handed out when a row is inserted but become visible when its
transaction commits, so a mark whose transaction commits after one with a
higher id would sit below the cursor for good, and the revoked token would
stay valid here until it expired (issue 17 #2). So every poll re-reads a
trailing window of the log: everything above the highest id that was
already visible :data:`TRAILING_WINDOW_SECONDS` ago. Marks are idempotent,
and the ids applied inside the window are remembered, so each is applied
once.
"""

from __future__ import annotations

from collections import deque

from bastion.security.revocation import RevocationList
from bastion.storage.protocols import RevocationStore
from bastion.types import Clock

#: How long after its id was drawn a revoking transaction may commit and still
#: be picked up by the poll. Revoking transactions are one or two statements
#: (milliseconds); this covers a stalled commit or a paused process with room
#: to spare, while keeping the rows re-read per poll to one window's worth.
TRAILING_WINDOW_SECONDS = 60.0


class RevocationFeed:
    """Applies new rows of the revocation log to an in-process list.

    Args:
        store: The durable log.
        revocations: This instance's list.
        clock: Time source (mark expiry and the window).
        window: See :data:`TRAILING_WINDOW_SECONDS`.
    """

    def __init__(
        self,
        store: RevocationStore,
        revocations: RevocationList,
        clock: Clock,
        *,
        window: float = TRAILING_WINDOW_SECONDS,
    ) -> None:
        self._store = store
        self._revocations = revocations
        self._clock = clock
        self._window = window
        #: Rows above this id are read on every poll.
        self._floor = 0
        #: (time of a poll, highest id visible then), oldest first.
        self._history: deque[tuple[float, int]] = deque()
        #: Ids above the floor already applied.
        self._applied: set[int] = set()

    async def sync(self) -> int:
        """Read the log and apply what is new; returns how many marks were new.

        Raises:
            Unavailable: the database cannot be reached (nothing changes).
        """
        now = self._clock.now()
        rows = await self._store.load(after_id=self._floor, now=now)
        fresh = 0
        for row_id, mark in rows:
            if row_id in self._applied:
                continue
            self._applied.add(row_id)
            self._revocations.apply(mark.subject, mark.min_version, mark.expires_at)
            fresh += 1
        highest = max((row_id for row_id, _ in rows), default=self._floor)
        if self._history:
            highest = max(highest, self._history[-1][1])
        self._history.append((now, highest))
        self._advance_floor(now)
        self._revocations.prune(now)
        return fresh

    def _advance_floor(self, now: float) -> None:
        # The floor is the highest id that was visible at least one window ago:
        # a transaction that drew a lower id had drawn it before that poll.
        while self._history and self._history[0][0] <= now - self._window:
            self._floor = max(self._floor, self._history.popleft()[1])
        self._applied = {row_id for row_id in self._applied if row_id > self._floor}
