"""The session list: where a user is signed in, and ending one session."""

from __future__ import annotations

from bastion.errors import NotFound
from bastion.services.auth import AuthService
from bastion.services.events import EventRecorder
from bastion.storage.protocols import UserStore
from bastion.storage.protocols_mfa import SessionDirectory, SessionInfo
from bastion.types import Clock, Principal, RequestContext

#: Session ids are 22 characters; longer input is nobody's.
_MAX_SESSION_ID = 64


class SessionService:
    """Lists and ends sessions (refresh-token families).

    Ending reuses :meth:`AuthService.end_sessions`: the database revocation log
    plus the broadcast, so the tokens die at once on every instance.

    Args:
        directory: The session list.
        users: The user store.
        auth: Revokes sessions.
        events: Security event recorder.
        clock: Time source.
    """

    def __init__(
        self,
        *,
        directory: SessionDirectory,
        users: UserStore,
        auth: AuthService,
        events: EventRecorder,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._users = users
        self._auth = auth
        self._events = events
        self._clock = clock

    async def of_user(self, user_id: int, *, must_exist: bool = False) -> list[SessionInfo]:
        """The user's live sessions, newest first.

        Raises:
            NotFound: ``must_exist`` and no such user.
        """
        if must_exist and await self._users.get(user_id) is None:
            raise NotFound("no such user")
        return await self._directory.live(user_id, now=self._clock.now())

    async def end(
        self, principal: Principal, session_id: str, *, context: RequestContext | None = None
    ) -> None:
        """End one of the caller's sessions (the current one too: a logout).

        Raises:
            NotFound: no live session of the caller's with that id.
        """
        now = self._clock.now()
        if len(session_id) > _MAX_SESSION_ID or (
            await self._directory.owner(session_id, now=now) != principal.user_id
        ):
            raise NotFound("no such session")
        await self._auth.end_sessions([session_id])
        stored = await self._users.get(principal.user_id)
        await self._events.record(
            "authn_token_revoked",
            context=context,
            user_id=principal.user_id,
            username=stored.user.username if stored else None,
            session=session_id,
            via="session_list",
        )

    async def end_all(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> int:
        """End every session of a user (admin); the number ended.

        Raises:
            NotFound: no such user.
        """
        stored = await self._users.get(user_id)
        if stored is None:
            raise NotFound("no such user")
        ids = [info.id for info in await self._directory.live(user_id, now=self._clock.now())]
        await self._auth.end_sessions(ids)
        await self._events.record(
            "authn_token_revoked",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            sessions_revoked=len(ids),
            actor=actor.user_id,
        )
        return len(ids)
