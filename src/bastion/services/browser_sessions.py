"""Server-side sessions of the web pages (OWASP Session Management Cheat Sheet).

The cookie holds a random token (256 bits); the database holds only its
digest, so a copy of the table signs nobody in. Each browser session hangs off
a session (refresh-token family) opened by the page login through the same
:meth:`AuthService.password_grant` as the API, so revoking that session (a
password change elsewhere, an admin, the sessions list) ends the browser
session as well, and every sign-in records the same events.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bastion.security.opaque import MAX_OPAQUE_TOKEN_LENGTH, digest_opaque_token, new_opaque_token
from bastion.storage.protocols import BrowserSessionRecord, BrowserSessionStore
from bastion.types import Clock, RequestContext

#: OWASP: 15-30 minutes of idleness for applications of ordinary risk.
IDLE_TIMEOUT = 30 * 60
#: OWASP: an absolute end whatever the activity (a working day).
ABSOLUTE_TIMEOUT = 12 * 60 * 60
#: Activity is written at most this often: a page view is not a write.
TOUCH_INTERVAL = 60
#: Expired rows removed per ``prune`` call.
PRUNE_BATCH = 500


def csrf_token_for(secret: str) -> str:
    """The synchronizer token of forms bound to ``secret`` (a cookie value).

    Derived rather than stored (OWASP CSRF Cheat Sheet, "HMAC based token"):
    unique per session, unguessable without the cookie, which script can't
    read (HttpOnly), and it cannot be turned back into the cookie.
    """
    return hmac.new(secret.encode("utf-8"), b"bastion-csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str | None, sent: str | None) -> bool:
    """Whether ``sent`` is the form token of ``secret``, in constant time."""
    if not secret or not sent or len(sent) != 64:
        return False
    return hmac.compare_digest(csrf_token_for(secret), sent)


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A live browser session.

    Attributes:
        token: The cookie value (only ever sent back to its own browser).
        record: What is stored about it.
    """

    token: str
    record: BrowserSessionRecord

    @property
    def csrf_token(self) -> str:
        """The synchronizer token of this session's forms."""
        return csrf_token_for(self.token)


class BrowserSessionService:
    """Creates, resolves and ends browser sessions.

    Args:
        store: Where sessions are kept.
        clock: Time source.
        idle_timeout: Seconds of inactivity that end a session.
        absolute_timeout: Seconds after sign-in that end it regardless.
    """

    def __init__(
        self,
        store: BrowserSessionStore,
        clock: Clock,
        *,
        idle_timeout: int = IDLE_TIMEOUT,
        absolute_timeout: int = ABSOLUTE_TIMEOUT,
    ) -> None:
        self._store = store
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout

    async def create(
        self, *, user_id: int, session_id: str, context: RequestContext | None = None
    ) -> BrowserSession:
        """A new browser session of ``session_id``: a fresh cookie each sign-in
        (OWASP: renew the session identifier at login, against fixation)."""
        now = self._clock.now()
        token = new_opaque_token()
        context = context or RequestContext()
        record = BrowserSessionRecord(session_id, user_id, now, now, now + self.absolute_timeout)
        await self._store.create(
            digest=digest_opaque_token(token),
            session_id=session_id,
            user_id=user_id,
            now=now,
            expires_at=record.expires_at,
            ip=context.ip,
            user_agent=context.user_agent[:512] if context.user_agent else None,
        )
        return BrowserSession(token, record)

    async def resolve(self, token: str | None) -> BrowserSession | None:
        """The live session of a cookie value, or ``None`` (unknown, idle too
        long, past its absolute end, or its family revoked)."""
        if not token or len(token) > MAX_OPAQUE_TOKEN_LENGTH:
            return None
        now = self._clock.now()
        digest = digest_opaque_token(token)
        record = await self._store.find(digest, now=now)
        if record is None:
            return None
        if now - record.last_seen_at > self.idle_timeout:
            await self._store.delete(digest)
            return None
        if now - record.last_seen_at > TOUCH_INTERVAL:
            await self._store.touch(digest, now=now)
        return BrowserSession(token, record)

    async def end(self, token: str) -> None:
        """Forget a browser session (sign-out)."""
        if token and len(token) <= MAX_OPAQUE_TOKEN_LENGTH:
            await self._store.delete(digest_opaque_token(token))

    async def prune(self) -> int:
        """Remove a batch of sessions past their absolute end; how many went."""
        return await self._store.prune(before=self._clock.now(), limit=PRUNE_BATCH)

    async def active_counts(self) -> tuple[int, int]:
        """Live API sessions and live (not idle) browser sessions."""
        now = self._clock.now()
        return await self._store.count_active(now=now, idle_since=now - self.idle_timeout)
