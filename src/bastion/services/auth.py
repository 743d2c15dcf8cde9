"""Authentication use-cases: password and refresh grants, logout, password
change, and access-token checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from bastion.errors import (
    BastionError,
    InvalidCredentials,
    InvalidGrant,
    InvalidToken,
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
from bastion.services.devices import KnownDevices
from bastion.services.events import EventRecorder
from bastion.services.login_gate import LoginAttempt, LoginGate
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
#: Times a grant re-reads a user whose credential version moved on while it
#: ran (a permission, password or factor change) before giving up.
_SESSION_ATTEMPTS = 3


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
        devices: Known-device tokens.
        throttle: Login throttling.
        broadcaster: Announces revocations to other instances at once.
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
        devices: KnownDevices,
        throttle: LoginThrottle | None = None,
        broadcaster: RevocationBroadcaster | None = None,
        require_verified_email: bool = False,
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
        self._gate = LoginGate(self._throttle, devices, events, clock)
        self._broadcaster = broadcaster or NullBroadcaster()
        self._require_verified_email = require_verified_email
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
        self,
        username: str,
        password: str,
        *,
        device_token: str | None = None,
        context: RequestContext | None = None,
    ) -> TokenPair:
        """Exchange a username and password for a token pair and a device token.

        The attempt is reserved with the throttles (or the device token's
        budget) *before* the password is verified, so concurrent guesses
        cannot all pass one check, and given back when the password was
        right. Unknown users cost one dummy verification and get the same
        :class:`InvalidCredentials` as a wrong password.

        Raises:
            Throttled: too many recent failures for this account or client.
            InvalidCredentials: unknown user or wrong password.
        """
        self._passwords.admit()
        if device_token:
            stored = await self._login_user(username)
            attempt = await self._gate.reserve(
                username, stored, device_token=device_token, context=context
            )
        else:
            # No device token to honour: the throttles decide first, so a
            # held-back flood costs no account lookup (issue 15, W3).
            attempt = await self._gate.reserve_before_lookup(
                username, lambda: self._login_user(username), context=context
            )
            stored = await self._login_user(username)
        valid = await self._passwords.verify(stored.password_hash if stored else None, password)
        if stored is None or not valid:
            await self._events.record(
                "authn_login_fail",
                outcome="failure",
                context=context,
                user_id=stored.user.id if stored else None,
                username=stored.user.username if stored else username[:_MAX_LOGIN_NAME],
                known_device=attempt.device is not None,
            )
            raise InvalidCredentials()
        if self._passwords.needs_rehash(stored.password_hash):
            upgraded = await self._passwords.hash(password)
            if await self._users.upgrade_hash(stored.user.id, stored.password_hash, upgraded):
                stored = dataclasses.replace(stored, password_hash=upgraded)
        return await self._complete_login(stored, attempt, device_token, context=context)

    async def _login_user(self, username: str) -> StoredUser | None:
        if len(username) > _MAX_LOGIN_NAME or not username.isascii():
            return None
        return await self._users.get_by_username(username)

    async def _after_password_verified(
        self, stored: StoredUser, *, context: RequestContext | None
    ) -> None:
        """Checks due once the password was right, before a session opens.

        The seam for what may still refuse a right password: an unverified
        address (``BASTION_EMAIL_VERIFICATION=required``) or a second factor
        to ask for. Raise a :class:`BastionError` to stop the login; the
        attempt is then given back, not counted as a failure, and the
        throttles are not reset (only a completed login resets them). Runs
        again if the user changed while the session was being opened.
        """
        if self._require_verified_email and not stored.user.email_verified:
            # BASTION_EMAIL_VERIFICATION=required. Only said once the password
            # was right, and not a failure for the throttles (SPEC).
            raise InvalidGrant("the email address is not verified")
        # With a second factor on, this raises MfaRequired: no token, and the
        # throttle is not reset until the login is complete (SPEC).
        await self.second_factor(stored, context)

    async def _complete_login(
        self,
        stored: StoredUser,
        attempt: LoginAttempt,
        device_token: str | None,
        *,
        context: RequestContext | None,
    ) -> TokenPair:
        """Open the session of a verified password, reset the throttles and
        answer with the device token."""
        pair: TokenPair | None = None
        try:
            for _ in range(_SESSION_ATTEMPTS):
                await self._after_password_verified(stored, context=context)
                pair = await self._open_session(stored, amr=AMR_PASSWORD, context=context)
                if pair is not None:
                    break
                stored = await self._reread_for_login(stored)
            if pair is None:
                raise InvalidCredentials()
        except BastionError:
            await self._gate.give_back(attempt, stored.user.id)
            raise
        device = await self._gate.complete(attempt, device_token, stored.user.id)
        await self._events.record(
            "authn_login_success",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            session=pair.session_id,
            known_device=attempt.device is not None,
            amr=list(AMR_PASSWORD),
        )
        return dataclasses.replace(pair, device_token=device)

    async def complete_login(
        self,
        stored: StoredUser,
        *,
        username: str,
        amr: tuple[str, ...],
        context: RequestContext | None = None,
    ) -> TokenPair:
        """Open a session for a user whose every factor was verified (the MFA
        step, a passwordless passkey).

        Resets the account's throttle, records ``authn_login_success`` and
        returns the first pair of the new session with a new device token.

        Args:
            stored: The user.
            username: The login name as typed (the throttle's key).
            amr: Authentication methods used (RFC 8176), carried by every
                access token of the session.
            context: The client, recorded on the session and the event.

        Raises:
            InvalidCredentials: the account changed its password or was
                deleted meanwhile.
        """
        pair: TokenPair | None = None
        for _ in range(_SESSION_ATTEMPTS):
            pair = await self._open_session(stored, amr=amr, context=context)
            if pair is not None:
                break
            stored = await self._reread_for_login(stored)
        if pair is None:
            raise InvalidCredentials()
        attempt = LoginAttempt(self._throttle.keys(username, context.ip if context else None))
        device = await self._gate.complete(attempt, None, stored.user.id)
        await self._events.record(
            "authn_login_success",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            session=pair.session_id,
            amr=list(amr),
        )
        return dataclasses.replace(pair, device_token=device)

    async def _reread_for_login(self, stored: StoredUser) -> StoredUser:
        # The credential version moved on between the read and the session:
        # go on with the fresh user, unless the verified password is no longer
        # its password (or the account is gone).
        fresh = await self._users.get(stored.user.id)
        if fresh is None or fresh.password_hash != stored.password_hash:
            raise InvalidCredentials()
        return fresh

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
                owner = await self._users.get(record.user_id)
                await self._events.record(
                    "authn_token_reuse",
                    outcome="failure",
                    context=context,
                    user_id=record.user_id,
                    username=owner.user.username if owner else None,
                    session=record.session_id,
                )
                raise InvalidGrant("the refresh token was already used")
        stored, pair = await self._continue_session(
            record.user_id, record.session_id, now=now, amr=record.amr, context=context
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
        owner = await self._users.get(principal.user_id)
        await self._events.record(
            "authn_token_revoked",
            context=context,
            user_id=principal.user_id,
            username=owner.user.username if owner else None,
            session=principal.session_id,
        )

    async def verify_current_password(
        self,
        user_id: int,
        password: str,
        *,
        context: RequestContext | None = None,
        purpose: str = "password_change",
    ) -> StoredUser:
        """Check a signed-in user's current password under the login throttle.

        Every endpoint that asks for ``current_password`` goes through here,
        so a stolen access token is no unthrottled oracle for the password
        (issue 17 #6): the guess is reserved with the account's and the
        client's throttles like a login, a refusal is an ``authn_login_lock``
        event, and a wrong password counts as a failed login. A right one is
        given back but resets nothing (only a completed login does).

        Args:
            user_id: The caller (from the verified access token).
            password: The claimed current password.
            context: Who is asking, for events and the client's throttle.
            purpose: What the check is for, recorded in a lock event.

        Returns:
            The user as read for the check.

        Raises:
            InvalidToken: the user no longer exists.
            Throttled: too many recent failures for this account or client.
            WrongPassword: the password is wrong (the caller records its event).
        """
        stored = await self._users.get(user_id)
        if stored is None:
            raise InvalidToken()
        self._passwords.admit()
        attempt = await self._gate.reserve(
            stored.user.username, stored, context=context, purpose=purpose
        )
        if not await self._passwords.verify(stored.password_hash, password):
            raise WrongPassword()
        await self._gate.give_back(attempt, stored.user.id)
        return stored

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        context: RequestContext | None = None,
    ) -> None:
        """Replace the caller's password and end every other session.

        The hash, the credential version and the revocation of the other
        sessions change in one transaction, so no login that verified the old
        password can open a session after it.

        Raises:
            WeakPassword: the new password breaks the policy.
            Throttled: too many wrong current passwords.
            WrongPassword: the current password is wrong.
            InvalidToken: the user no longer exists.
        """
        stored = await self._users.get(principal.user_id)
        if stored is None:
            raise InvalidToken()
        self._passwords.check_policy(
            new_password, username=stored.user.username, field="new_password"
        )
        try:
            stored = await self.verify_current_password(
                principal.user_id, current_password, context=context
            )
        except WrongPassword:
            await self._events.record(
                "authn_password_change",
                outcome="failure",
                context=context,
                user_id=stored.user.id,
                username=stored.user.username,
                reason="wrong_current_password",
            )
            raise
        new_hash = await self._passwords.hash(new_password)
        now = self._clock.now()
        expires_at = self._session_mark_expiry(now)
        others = await self._users.replace_password(
            stored.user.id,
            new_hash,
            keep_session=principal.session_id,
            now=now,
            expires_at=expires_at,
        )
        if others is None:
            raise InvalidToken()
        await self._announce_revoked(others, expires_at)
        await self._events.record(
            "authn_password_change",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            sessions_revoked=len(others),
        )

    async def end_all_sessions(self, user_id: int) -> int:
        """End every session of ``user_id`` at once on every instance (a
        password reset); returns how many were live."""
        now = self._clock.now()
        session_ids = await self._sessions.active_sessions(user_id, now=now)
        await self._revoke_sessions(session_ids, now=now)
        return len(session_ids)

    async def end_sessions(self, session_ids: list[str]) -> None:
        """End sessions: their access and refresh tokens die at once, on every instance."""
        await self._revoke_sessions(session_ids, now=self._clock.now())

    # -- helpers ---------------------------------------------------------------

    def _session_mark_expiry(self, now: float) -> float:
        # Kept until the last token it can apply to is refused as expired,
        # which verification does only after the leeway past ``exp``.
        return now + self._codec.ttl + LEEWAY_SECONDS

    async def _revoke_sessions(self, session_ids: list[str], *, now: float) -> None:
        if not session_ids:
            return
        expires_at = self._session_mark_expiry(now)
        await self._sessions.revoke(session_ids, now=now, expires_at=expires_at)
        await self._announce_revoked(session_ids, expires_at)

    async def _announce_revoked(self, session_ids: list[str], expires_at: float) -> None:
        """Apply revocations already stored: here at once, elsewhere by broadcast."""
        if not session_ids:
            return
        for sid in session_ids:
            self._revocations.revoke_session(sid, expires_at)
        await self._broadcaster.publish(
            [Revocation(f"{SESSION_PREFIX}{sid}", 0, expires_at) for sid in session_ids]
        )

    async def _open_session(
        self, stored: StoredUser, *, amr: tuple[str, ...], context: RequestContext | None
    ) -> TokenPair | None:
        """A new session for ``stored``, or ``None`` if its credential version
        moved on since it was read (read it again and retry)."""
        now = self._clock.now()
        session_id = new_session_id()
        refresh = new_opaque_token()
        opened = await self._sessions.create(
            session_id=session_id,
            user_id=stored.user.id,
            credential_version=stored.credential_version,
            digest=digest_opaque_token(refresh),
            now=now,
            expires_at=now + self._refresh_ttl,
            amr=amr,
            ip=context.ip if context else None,
            user_agent=context.user_agent if context else None,
        )
        return self._pair(stored, session_id, refresh, amr) if opened else None

    async def _continue_session(
        self,
        user_id: int,
        session_id: str,
        *,
        now: float,
        amr: tuple[str, ...],
        context: RequestContext | None,
    ) -> tuple[StoredUser, TokenPair]:
        """The next pair of a session, signed with the user as it is now."""
        for _ in range(_SESSION_ATTEMPTS):
            stored = await self._users.get(user_id)
            if stored is None:
                break
            refresh = new_opaque_token()
            outcome = await self._sessions.add_token(
                session_id=session_id,
                user_id=user_id,
                credential_version=stored.credential_version,
                digest=digest_opaque_token(refresh),
                now=now,
                expires_at=now + self._refresh_ttl,
                ip=context.ip if context else None,
                user_agent=context.user_agent if context else None,
            )
            if outcome == "added":
                return stored, self._pair(stored, session_id, refresh, amr)
            if outcome == "revoked":
                break
        raise InvalidGrant("the refresh token is invalid")

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
