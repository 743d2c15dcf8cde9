"""Account recovery use-cases: forgot/reset password, verify and change email.

The two unauthenticated requests that name an address (forgot, resend) do
the same work whatever the address: they count it against its hourly budget
and queue an intent, nothing else. Whether an account has the address is
found out later by the courier (``bastion.services.mailcompose``), so body,
status, headers and time of the answer cannot tell (OWASP Forgot Password
Cheat Sheet; fastapi-users #1534).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bastion.errors import Conflict, InvalidLinkToken, InvalidToken, WrongPassword
from bastion.security.onetime import (
    EMAIL_CHANGE,
    RESET,
    VERIFY,
    TokenDigester,
    looks_like_token,
)
from bastion.services.events import EventRecorder
from bastion.services.mail import MailService
from bastion.services.passwords import PasswordService
from bastion.storage.mailport import OnetimeTokenStore, RecoveryStore
from bastion.storage.protocols import UserStore
from bastion.types import Clock, Principal, RequestContext

#: SPEC: at most 3 mails of each kind per normalised address per hour.
MAILS_PER_ADDRESS_PER_HOUR = 3

#: Ends every session of a user on every instance (``AuthService.end_all_sessions``).
EndSessions = Callable[[int], Awaitable[int]]


def address_key(email: str) -> str:
    """The normalised form an address is limited and looked up by."""
    return email.lower()


class RecoveryService:
    """Forgot/reset password, email verification and change.

    Args:
        users: Accounts.
        recovery: The recovery transactions.
        tokens: One-time tokens (to check one before spending it).
        digester: Keyed digests of tokens.
        passwords: Policy and hashing.
        mail: The outbox.
        events: Security events.
        clock: Time source.
        end_sessions: Revokes every session of a user at once, everywhere.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        recovery: RecoveryStore,
        tokens: OnetimeTokenStore,
        digester: TokenDigester,
        passwords: PasswordService,
        mail: MailService,
        events: EventRecorder,
        clock: Clock,
        end_sessions: EndSessions,
    ) -> None:
        self._users = users
        self._recovery = recovery
        self._tokens = tokens
        self._digester = digester
        self._passwords = passwords
        self._mail = mail
        self._events = events
        self._clock = clock
        self._end_sessions = end_sessions

    # -- requests that name an address ------------------------------------------

    async def forgot_password(self, email: str, *, context: RequestContext | None = None) -> None:
        """Queue a reset intent for ``email`` (within its hourly budget)."""
        intent = self._mail.message(RESET, address=address_key(email), context=context)
        await self._mail.request(intent, per_hour=MAILS_PER_ADDRESS_PER_HOUR)

    async def resend_verification(
        self, email: str, *, context: RequestContext | None = None
    ) -> None:
        """Queue a verification intent for ``email`` (within its hourly budget)."""
        intent = self._mail.message(VERIFY, address=address_key(email), context=context)
        await self._mail.request(intent, per_hour=MAILS_PER_ADDRESS_PER_HOUR)

    # -- spending tokens ----------------------------------------------------------

    def _digest(self, purpose: str, token: str) -> str:
        if not looks_like_token(token):
            raise InvalidLinkToken()
        return self._digester.digest(purpose, token)

    async def reset_password(
        self, token: str, new_password: str, *, context: RequestContext | None = None
    ) -> None:
        """Set a new password with a reset token and end every session.

        The password is checked before the token is spent, so a refused
        password leaves the link usable; the spend itself is one atomic
        statement, so of two concurrent resets one wins.

        Raises:
            InvalidLinkToken: unknown, used, voided or expired token.
            WeakPassword: the password breaks the policy (token not spent).
        """
        digest = self._digest(RESET, token)
        now = self._clock.now()
        found = await self._tokens.find(digest, frozenset({RESET}), now=now)
        stored = await self._users.get(found.user_id) if found else None
        if found is None or stored is None:
            raise InvalidLinkToken()
        self._passwords.check_policy(
            new_password, username=stored.user.username, field="new_password"
        )
        self._passwords.admit()
        password_hash = await self._passwords.hash(new_password)
        notice = self._mail.message("password_changed", context=context, via="reset")
        spent = await self._recovery.reset_password(
            digest, password_hash=password_hash, now=self._clock.now(), notice=notice
        )
        if spent is None:
            raise InvalidLinkToken()
        self._mail.notify()
        revoked = await self._end_sessions(spent.user_id)
        await self._events.record(
            "authn_password_change",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            via="reset",
            sessions_revoked=revoked,
        )

    async def verify_email(self, token: str, *, context: RequestContext | None = None) -> None:
        """Confirm an address with a verification or email-change token.

        Raises:
            InvalidLinkToken: unknown, used, voided or expired token.
            Conflict: an email change whose new address was taken meanwhile.
        """
        if not looks_like_token(token):
            raise InvalidLinkToken()
        now = self._clock.now()
        # The purpose is inside the MAC: try each purpose this endpoint takes.
        for purpose in (VERIFY, EMAIL_CHANGE):
            record = await self._recovery.confirm_email(
                self._digester.digest(purpose, token), now=now
            )
            if record is not None:
                break
        else:
            raise InvalidLinkToken()
        stored = await self._users.get(record.user_id)
        username = stored.user.username if stored else None
        if record.purpose == EMAIL_CHANGE:
            await self._events.record(
                "user_updated",
                context=context,
                user_id=record.user_id,
                username=username,
                field="email",
            )
        await self._events.record(
            "user_email_verified", context=context, user_id=record.user_id, username=username
        )

    # -- signed-in requests ---------------------------------------------------------

    async def change_email(
        self,
        principal: Principal,
        new_email: str,
        current_password: str,
        *,
        context: RequestContext | None = None,
    ) -> None:
        """Send a confirmation to ``new_email`` and a notice to the old address.

        Raises:
            WrongPassword: the current password is wrong.
            Conflict: ``new_email`` belongs to an account (this one included).
            InvalidToken: the caller no longer exists.
        """
        stored = await self._users.get(principal.user_id)
        if stored is None:
            raise InvalidToken()
        self._passwords.admit()
        if not await self._passwords.verify(stored.password_hash, current_password):
            raise WrongPassword()
        if await self._recovery.email_taken(new_email):
            raise Conflict("email is already taken", field="email")
        user = stored.user
        confirmation = self._mail.message(
            EMAIL_CHANGE,
            user_id=user.id,
            address=address_key(new_email),
            context=context,
            new_email=new_email,
        )
        # Pinned to the old address: it must not follow the account if the
        # change is confirmed before the courier gets to it.
        notice = self._mail.message(
            "email_change_notice", user_id=user.id, to=user.email, new_email=new_email
        )
        await self._mail.request(confirmation, per_hour=MAILS_PER_ADDRESS_PER_HOUR, also=(notice,))
        await self._events.record(
            "user_email_change_request", context=context, user_id=user.id, username=user.username
        )
