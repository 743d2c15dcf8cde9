"""Authentication use-cases: password and refresh grants, logout, password
change, and access-token checks."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from bastion.errors import (
    InvalidCredentials,
    InvalidGrant,
    InvalidToken,
    Throttled,
    WrongPassword,
)
from bastion.security.opaque import (
    MAX_OPAQUE_TOKEN_LENGTH,
    digest_opaque_token,
    new_opaque_token,
    new_session_id,
)
from bastion.security.revocation import SESSION_PREFIX, RevocationList
from bastion.security.tokens import LEEWAY_SECONDS, AccessTokenCodec
from bastion.services.events import EventRecorder
from bastion.services.passwords import PasswordService
from bastion.services.throttle import LoginThrottle
from bastion.storage.protocols import (
    NullBroadcaster,
    Revocation,
    RevocationBroadcaster,
    SessionStore,
    StoredUser,
    UserStore,
)
from bastion.types import Clock, Principal, RequestContext, TokenPair

#: The mfa seam: called once the password was right, before any session is
#: opened; raises :class:`bastion.errors.MfaRequired` when a second factor is due.
SecondFactorGate = Callable[[StoredUser, "RequestContext | None"], Awaitable[None]]
#: RFC 8176 §2: a password was verified.
AMR_PASSWORD = ("pwd",)


async def _no_second_factor(_stored: StoredUser, _context: RequestContext | None) -> None:
    return None


#: Login names are at most 20 characters; longer input is looked up as nobody
#: (after the same dummy verification), never as a database error.
_MAX_LOGIN_NAME = 64


class AuthService:
    """Grants, sessions and token checks.

    Args:
        users: The user store.
        sessions: Sessions and refresh tokens.
        passwords: Hashing off the event loop.
        codec: Access-token issue and verification.
        revocations: This instance's revocation list.
        events: Security event recorder.
        clock: Time source.
        refresh_ttl: Refresh token lifetime in seconds.
        reuse_interval: Seconds a spent refresh token still yields a pair.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        passwords: PasswordService,
        codec: AccessTokenCodec,
        revocations: RevocationList,
        events: EventRecorder,
        clock: Clock,
        refresh_ttl: int,
        reuse_interval: int,
        throttle: LoginThrottle | None = None,
        broadcaster: RevocationBroadcaster | None = None,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._passwords = passwords
        self._codec = codec
        self._revocations = revocations
        self._events = events
        self._clock = clock
        self._refresh_ttl = refresh_ttl
        self._reuse_interval = reuse_interval
        self._throttle = throttle or LoginThrottle()
        self._broadcaster = broadcaster or NullBroadcaster()
        #: Set by bootstrap to the MFA service's check (mfa).
        self.second_factor: SecondFactorGate = _no_second_factor

    @property
    def throttle(self) -> LoginThrottle:
        """The login throttle (the MFA step counts its wrong codes here too)."""
        return self._throttle

    # -- access tokens ---------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """Verify an access token and check it is not revoked.

        This is the hot path of every authenticated request: a signature check
        and two dictionary lookups, no I/O.

        Raises:
            InvalidToken: for any failure.
        """
        principal, version = self._codec.verify(token)
        if self._revocations.is_revoked(principal, version):
            raise InvalidToken()
        return principal

    # -- grants ----------------------------------------------------------------

    async def password_grant(
        self, username: str, password: str, *, context: RequestContext | None = None
    ) -> TokenPair:
        """Exchange a username and password for a token pair.

        Unknown users cost one dummy verification and get the same
        :class:`InvalidCredentials` as a wrong password.
        """
        self._passwords.admit()
        now = self._clock.now()
        client = context.ip if context and context.ip else "unknown"
        wait = await self._throttle.retry_after(username, client, now)
        if wait > 0:
            await self._events.record(
                "authn_login_lock",
                outcome="failure",
                context=context,
                username=username[:_MAX_LOGIN_NAME],
                retry_after=round(wait, 1),
            )
            raise Throttled("too many failed logins, retry later", retry_after=math.ceil(wait))
        stored = None
        if len(username) <= _MAX_LOGIN_NAME and username.isascii():
            stored = await self._users.get_by_username(username)
        valid = await self._passwords.verify(stored.password_hash if stored else None, password)
        if stored is None or not valid:
            await self._throttle.failure(username, client, now)
            await self._events.record(
                "authn_login_fail",
                outcome="failure",
                context=context,
                user_id=stored.user.id if stored else None,
                username=username[:_MAX_LOGIN_NAME],
            )
            raise InvalidCredentials()
        if self._passwords.needs_rehash(stored.password_hash):
            upgraded = await self._passwords.hash(password)
            await self._users.set_password_hash(stored.user.id, upgraded)
        # mfa seam: with a second factor on, this raises MfaRequired: no token,
        # and the throttle is not reset until the login is complete (SPEC).
        await self.second_factor(stored, context)
        return await self.complete_login(
            stored, username=username, amr=AMR_PASSWORD, context=context
        )

    async def complete_login(
        self,
        stored: StoredUser,
        *,
        username: str,
        amr: tuple[str, ...],
        context: RequestContext | None = None,
    ) -> TokenPair:
        """Open a session for a user whose every factor was verified.

        Resets the account's throttle, records ``authn_login_success`` and
        returns the first pair of the new session.

        Args:
            stored: The user.
            username: The login name as typed (the throttle's key).
            amr: Authentication methods used (RFC 8176), carried by every
                access token of the session.
            context: The client, recorded on the session and the event.
        """
        client = context.ip if context and context.ip else "unknown"
        await self._throttle.success(username, client)
        pair = await self._open_session(stored, amr=amr, context=context)
        await self._events.record(
            "authn_login_success",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            session=pair.session_id,
            amr=list(amr),
        )
        return pair

    async def refresh_grant(
        self, refresh_token: str, *, context: RequestContext | None = None
    ) -> TokenPair:
        """Exchange a refresh token for a new pair of the same session (RFC 6749 §6).

        Refresh tokens are single use. A spent one presented again within the
        reuse interval yields another pair (two tabs refreshing at once);
        after it, the reuse means the token leaked, and the whole family is
        revoked (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

        Raises:
            InvalidGrant: unknown, expired, revoked or reused token.
        """
        if not refresh_token or len(refresh_token) > MAX_OPAQUE_TOKEN_LENGTH:
            raise InvalidGrant("the refresh token is invalid")
        digest = digest_opaque_token(refresh_token)
        now = self._clock.now()
        record = await self._sessions.find(digest)
        if record is None or record.session_revoked or record.expires_at <= now:
            raise InvalidGrant("the refresh token is invalid")
        if not await self._sessions.spend(digest, now=now):
            refreshed = await self._sessions.find(digest)
            used_at = refreshed.used_at if refreshed else None
            within = used_at is not None and now - used_at <= self._reuse_interval
            if not (self._reuse_interval > 0 and within):
                await self._revoke_sessions([record.session_id], now=now)
                await self._events.record(
                    "authn_token_reuse",
                    outcome="failure",
                    context=context,
                    user_id=record.user_id,
                    session=record.session_id,
                )
                raise InvalidGrant("the refresh token was already used")
        stored = await self._users.get(record.user_id)
        if stored is None:
            raise InvalidGrant("the refresh token is invalid")
        pair = await self._continue_session(
            stored, record.session_id, now=now, amr=record.amr, context=context
        )
        await self._events.record(
            "authn_token_created",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            session=record.session_id,
        )
        return pair

    # -- ending sessions -------------------------------------------------------

    async def logout(self, principal: Principal, *, context: RequestContext | None = None) -> None:
        """End the caller's session: its access and refresh tokens die at once."""
        await self._revoke_sessions([principal.session_id], now=self._clock.now())
        await self._events.record(
            "authn_token_revoked",
            context=context,
            user_id=principal.user_id,
            session=principal.session_id,
        )

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        context: RequestContext | None = None,
    ) -> None:
        """Replace the caller's password and end every other session.

        Raises:
            WeakPassword: the new password breaks the policy.
            WrongPassword: the current password is wrong.
            InvalidToken: the user no longer exists.
        """
        stored = await self._users.get(principal.user_id)
        if stored is None:
            raise InvalidToken()
        self._passwords.check_policy(
            new_password, username=stored.user.username, field="new_password"
        )
        if not await self._passwords.verify(stored.password_hash, current_password):
            await self._events.record(
                "authn_password_change",
                outcome="failure",
                context=context,
                user_id=stored.user.id,
                username=stored.user.username,
                reason="wrong_current_password",
            )
            raise WrongPassword()
        await self._users.set_password_hash(
            stored.user.id, await self._passwords.hash(new_password)
        )
        now = self._clock.now()
        others = [
            sid
            for sid in await self._sessions.active_sessions(stored.user.id, now=now)
            if sid != principal.session_id
        ]
        await self._revoke_sessions(others, now=now)
        await self._events.record(
            "authn_password_change",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            sessions_revoked=len(others),
        )

    async def end_sessions(self, session_ids: list[str]) -> None:
        """End sessions: their access and refresh tokens die at once, on every instance."""
        await self._revoke_sessions(session_ids, now=self._clock.now())

    # -- helpers ---------------------------------------------------------------

    async def _revoke_sessions(self, session_ids: list[str], *, now: float) -> None:
        if not session_ids:
            return
        # Kept until the last token it can apply to is refused as expired,
        # which verification does only after the leeway past ``exp``.
        expires_at = now + self._codec.ttl + LEEWAY_SECONDS
        await self._sessions.revoke(session_ids, now=now, expires_at=expires_at)
        for sid in session_ids:
            self._revocations.revoke_session(sid, expires_at)
        await self._broadcaster.publish(
            [Revocation(f"{SESSION_PREFIX}{sid}", 0, expires_at) for sid in session_ids]
        )

    async def _open_session(
        self, stored: StoredUser, *, amr: tuple[str, ...], context: RequestContext | None
    ) -> TokenPair:
        now = self._clock.now()
        session_id = new_session_id()
        refresh = new_opaque_token()
        await self._sessions.create(
            session_id=session_id,
            user_id=stored.user.id,
            digest=digest_opaque_token(refresh),
            now=now,
            expires_at=now + self._refresh_ttl,
            amr=amr,
            ip=context.ip if context else None,
            user_agent=context.user_agent if context else None,
        )
        return self._pair(stored, session_id, refresh, amr)

    async def _continue_session(
        self,
        stored: StoredUser,
        session_id: str,
        *,
        now: float,
        amr: tuple[str, ...],
        context: RequestContext | None,
    ) -> TokenPair:
        refresh = new_opaque_token()
        await self._sessions.add_token(
            session_id=session_id,
            digest=digest_opaque_token(refresh),
            now=now,
            expires_at=now + self._refresh_ttl,
            ip=context.ip if context else None,
            user_agent=context.user_agent if context else None,
        )
        return self._pair(stored, session_id, refresh, amr)

    def _pair(
        self, stored: StoredUser, session_id: str, refresh: str, amr: tuple[str, ...]
    ) -> TokenPair:
        access = self._codec.issue(
            user_id=stored.user.id,
            session_id=session_id,
            permissions=stored.user.permissions,
            version=stored.token_version,
            amr=amr,
        )
        return TokenPair(access, refresh, self._codec.ttl, stored.user.id, session_id)
