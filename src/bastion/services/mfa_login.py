"""The second step of a login with MFA on.

A right password for such a user yields no token: :meth:`MfaLogin.gate` (the
seam in :class:`AuthService`) answers with an ``mfa_token`` instead, a
single-use, 5-minute handle of the half-done login. The extension grant
``urn:bastion:params:oauth:grant-type:mfa`` (RFC 6749 §4.5) completes it with
a TOTP code, a recovery code or a passkey assertion. Five wrong answers kill
the handle, and every wrong answer counts as a failed login for the account's
throttle, so the second factor cannot be brute-forced either (RFC 6238 §5.2;
OWASP MFA Cheat Sheet).
"""

from __future__ import annotations

import math
from typing import Any

from bastion.errors import InvalidGrant, MfaRequired, Throttled
from bastion.security.opaque import MAX_OPAQUE_TOKEN_LENGTH, digest_opaque_token, new_opaque_token
from bastion.services.auth import AuthService
from bastion.services.events import EventRecorder
from bastion.services.mfa import MfaService
from bastion.services.passkeys import PasskeyService
from bastion.services.throttle import LoginThrottle
from bastion.storage.protocols import StoredUser, UserStore
from bastion.storage.protocols_mfa import ChallengeStore
from bastion.types import Clock, RequestContext, TokenPair

MFA_TOKEN_TTL = 300
MAX_WRONG_ANSWERS = 5
OTP, RECOVERY_CODE, WEBAUTHN = "otp", "recovery_code", "webauthn"
#: RFC 8176 §2: what each second factor adds to "pwd".
_AMR_OTP = ("pwd", "otp", "mfa")


def _key(mfa_token: str) -> str:
    return f"mfa:{digest_opaque_token(mfa_token)}"


class MfaLogin:
    """Issues ``mfa_token``\\ s and completes logins with a second factor.

    Args:
        auth: Opens the session once every factor is verified.
        users: The user store.
        mfa: TOTP and recovery codes.
        passkeys: Passkey assertions.
        challenges: Where pending logins are kept (shared by every instance).
        throttle: The account throttle of password logins.
        events: Security event recorder.
        clock: Time source.
    """

    def __init__(
        self,
        *,
        auth: AuthService,
        users: UserStore,
        mfa: MfaService,
        passkeys: PasskeyService,
        challenges: ChallengeStore,
        throttle: LoginThrottle,
        events: EventRecorder,
        clock: Clock,
    ) -> None:
        self._auth = auth
        self._users = users
        self._mfa = mfa
        self._passkeys = passkeys
        self._challenges = challenges
        self._throttle = throttle
        self._events = events
        self._clock = clock

    async def gate(self, stored: StoredUser, context: RequestContext | None) -> None:
        """Called once the password was right: raise :class:`MfaRequired` if MFA is on."""
        summary = await self._mfa.status(stored.user.id)
        if not summary.enabled:
            return
        methods = []
        if summary.totp:
            methods.append(OTP)
        if summary.recovery_codes_left:
            methods.append(RECOVERY_CODE)
        if summary.passkeys:
            methods.append(WEBAUTHN)
        token = new_opaque_token()
        await self._challenges.put(
            _key(token),
            {"user_id": stored.user.id, "username": stored.user.username},
            expires_at=self._clock.now() + MFA_TOKEN_TTL,
        )
        raise MfaRequired(mfa_token=token, methods=methods, expires_in=MFA_TOKEN_TTL)

    async def webauthn_options(self, mfa_token: str) -> dict[str, Any]:
        """Request options for the pending login's user's passkeys.

        Raises:
            InvalidGrant: the ``mfa_token`` is bad, or the user has no passkey.
        """
        key, entry = await self._pending(mfa_token)
        return await self._passkeys.second_factor_options(int(entry["user_id"]), key)

    async def grant(
        self,
        mfa_token: str,
        *,
        method: str,
        answer: Any,
        context: RequestContext | None = None,
    ) -> TokenPair:
        """Complete a login with one second factor.

        Args:
            mfa_token: From the ``mfa_required`` answer.
            method: ``otp``, ``recovery_code`` or ``webauthn``.
            answer: The code, or the assertion (its JSON object or text).
            context: The client.

        Raises:
            InvalidGrant: bad, expired, spent or dead ``mfa_token``; wrong answer.
            Throttled: the account is throttled.
        """
        key, entry = await self._pending(mfa_token)
        user_id, username = int(entry["user_id"]), str(entry["username"])
        now = self._clock.now()
        # Reserved before the check, like a password guess: a wrong code is a
        # failed login for the account's throttle, and concurrent guesses
        # cannot all pass one check (issue 17 #4).
        keys = self._throttle.keys(username, context.ip if context else None)
        wait = await self._throttle.reserve(keys, now)
        if wait > 0:
            await self._events.record(
                "authn_login_lock",
                outcome="failure",
                context=context,
                user_id=user_id,
                username=username,
                retry_after=round(wait, 1),
            )
            raise Throttled("too many failed logins, retry later", retry_after=math.ceil(wait))
        amr = await self._verify(user_id, method, answer, key, context)
        if amr is None:
            if await self._challenges.fail(key, now=now) >= MAX_WRONG_ANSWERS:
                await self._challenges.delete(key)
            await self._events.record(
                "authn_mfa_fail",
                outcome="failure",
                context=context,
                user_id=user_id,
                username=username,
                method=method,
            )
            raise InvalidGrant("the second factor is wrong")
        await self._throttle.refund(keys, now)
        # Single use: of two completions racing with one mfa_token, one wins.
        if await self._challenges.take(key, now=now) is None:
            raise InvalidGrant("the mfa_token is invalid or expired")
        stored = await self._users.get(user_id)
        if stored is None:
            raise InvalidGrant("the mfa_token is invalid or expired")
        return await self._auth.complete_login(stored, username=username, amr=amr, context=context)

    async def _verify(
        self,
        user_id: int,
        method: str,
        answer: Any,
        key: str,
        context: RequestContext | None,
    ) -> tuple[str, ...] | None:
        if method == OTP and isinstance(answer, str):
            return _AMR_OTP if await self._mfa.verify_totp(user_id, answer) else None
        if method == RECOVERY_CODE and isinstance(answer, str):
            used = await self._mfa.use_recovery_code(user_id, answer, context=context)
            return _AMR_OTP if used else None
        if method == WEBAUTHN:
            assertion = await self._passkeys.verify_second_factor(user_id, answer, bound_to=key)
            return None if assertion is None else ("pwd", *assertion.amr, "mfa")
        return None

    async def _pending(self, mfa_token: str) -> tuple[str, dict[str, Any]]:
        if not mfa_token or len(mfa_token) > MAX_OPAQUE_TOKEN_LENGTH:
            raise InvalidGrant("the mfa_token is invalid or expired")
        key = _key(mfa_token)
        entry = await self._challenges.get(key, now=self._clock.now())
        if entry is None:
            raise InvalidGrant("the mfa_token is invalid or expired")
        return key, entry

    async def passwordless_grant(
        self, credential: Any, *, context: RequestContext | None = None
    ) -> TokenPair:
        """``urn:bastion:params:oauth:grant-type:passkey``: sign in with a passkey alone.

        Raises:
            InvalidGrant: the assertion does not verify.
        """
        assertion = await self._passkeys.verify_passwordless(credential)
        stored = await self._users.get(assertion.user_id)
        if stored is None:
            raise InvalidGrant("the passkey assertion is invalid")
        return await self._auth.complete_login(
            stored, username=stored.user.username, amr=assertion.amr, context=context
        )
