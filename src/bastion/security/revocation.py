"""The in-process view of revocations: two dictionary lookups per request.

A token is dead when its session (``sid``) was ended, or when its ``ver`` is
below the user's minimum (permission change, deletion). Session entries are
dropped once every token they could apply to has expired. A user's version
floor is kept for as long as the user exists (:data:`WHILE_USER_EXISTS`): a
login that read the user before a demotion may sign its token any time later,
so no expiry computed at the demotion would be safe. Memory is bounded by
the users whose permissions ever changed, plus one access-token lifetime of
session revocations and deletions.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.types import Principal

SESSION_PREFIX = "session:"
USER_PREFIX = "user:"
#: ``min_version`` of a deleted user: no token of theirs can reach it.
DELETED = 2**31 - 1
#: ``expires_at`` of a user's version floor: the year 9999, i.e. until the
#: user is deleted (the deletion mark then replaces the floor).
WHILE_USER_EXISTS = 253_402_300_799.0


class RevocationList:
    """Revoked sessions and per-user minimum token versions, with expiry."""

    def __init__(self) -> None:
        self._sessions: dict[str, float] = {}
        self._users: dict[int, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        """Mark every token of ``session_id`` dead until ``expires_at``."""
        self._sessions[session_id] = max(expires_at, self._sessions.get(session_id, 0.0))

    def revoke_user_before(self, user_id: int, min_version: int, expires_at: float) -> None:
        """Mark every token of ``user_id`` with ``ver < min_version`` dead."""
        current = self._users.get(user_id)
        if min_version == DELETED:
            # The user is gone and no session of theirs can open any more, so
            # the mark may expire with the last token issued before: it
            # replaces the permanent floor instead of inheriting its expiry.
            kept = current[1] if current is not None and current[0] == DELETED else 0.0
            self._users[user_id] = (DELETED, max(expires_at, kept))
        elif current is None or current[0] <= min_version:
            self._users[user_id] = (min_version, max(expires_at, current[1] if current else 0.0))

    def apply(self, subject: str, min_version: int, expires_at: float) -> None:
        """Apply one durable revocation record (see ``storage.protocols.Revocation``)."""
        if subject.startswith(SESSION_PREFIX):
            self.revoke_session(subject[len(SESSION_PREFIX) :], expires_at)
        elif subject.startswith(USER_PREFIX):
            self.revoke_user_before(int(subject[len(USER_PREFIX) :]), min_version, expires_at)

    def is_revoked(self, principal: Principal, version: int) -> bool:
        """Whether the verified token is dead."""
        if principal.session_id in self._sessions:
            return True
        entry = self._users.get(principal.user_id)
        return entry is not None and version < entry[0]

    def prune(self, now: float) -> None:
        """Forget entries whose tokens have all expired."""
        self._sessions = {sid: exp for sid, exp in self._sessions.items() if exp > now}
        self._users = {uid: entry for uid, entry in self._users.items() if entry[1] > now}

    def sessions(self) -> Iterable[str]:
        """Revoked session ids (for diagnostics)."""
        return self._sessions.keys()
