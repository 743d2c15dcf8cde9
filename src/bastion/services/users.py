"""User use-cases: register, read, search, change permissions, delete, unlock."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from bastion.errors import Forbidden, NotFound, Unavailable
from bastion.security.revocation import DELETED, USER_PREFIX, WHILE_USER_EXISTS, RevocationList
from bastion.security.tokens import LEEWAY_SECONDS
from bastion.services.events import EventRecorder
from bastion.services.mail import MailService
from bastion.services.passwords import PasswordService
from bastion.services.throttle import LoginThrottle
from bastion.storage.protocols import (
    NewUser,
    NullBroadcaster,
    Revocation,
    RevocationBroadcaster,
    UserStore,
)
from bastion.types import ADMIN, Clock, Principal, RequestContext, User, utc

MAX_SEARCH_RESULTS = 50
#: Usernames remembered by id for events (a username never changes).
_USERNAME_CACHE = 4096


class UserService:
    """Accounts.

    Args:
        users: The user store.
        passwords: Policy and hashing.
        events: Security event recorder.
        revocations: This instance's revocation list, updated at once.
        clock: Time source.
        access_ttl: Access token lifetime: how long a revocation must be kept.
        broadcaster: Announces revocations to other instances at once.
        throttle: Login throttling (admins see and lift locks).
        mail: The outbox, for the verification mail of a registration.
        verify_at_registration: Queue that mail (``BASTION_EMAIL_VERIFICATION``
            other than ``off``).
    """

    def __init__(
        self,
        users: UserStore,
        passwords: PasswordService,
        events: EventRecorder,
        revocations: RevocationList,
        clock: Clock,
        access_ttl: int,
        broadcaster: RevocationBroadcaster | None = None,
        *,
        throttle: LoginThrottle | None = None,
        mail: MailService | None = None,
        verify_at_registration: bool = False,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._events = events
        self._revocations = revocations
        self._clock = clock
        self._access_ttl = access_ttl
        self._broadcaster = broadcaster or NullBroadcaster()
        self._throttle = throttle or LoginThrottle()
        self._usernames: OrderedDict[int, str] = OrderedDict()
        self._mail = mail
        self._verify_at_registration = verify_at_registration and mail is not None

    def _revocation_expiry(self) -> float:
        # Until every token issued so far has expired, including the leeway
        # verification allows past ``exp`` (bastion.security.tokens).
        return self._clock.now() + self._access_ttl + LEEWAY_SECONDS

    async def register(
        self,
        *,
        username: str,
        email: str,
        age: int,
        password: str,
        permissions: tuple[str, ...] = (),
        context: RequestContext | None = None,
        email_verified: bool = False,
    ) -> User:
        """Create an account (``email_verified``: for ``bastion create-admin``).

        Raises:
            WeakPassword: the password breaks the policy.
            Conflict: the username or email is taken (decided by the database).
        """
        self._passwords.check_policy(password, username=username)
        self._passwords.admit()
        password_hash = await self._passwords.hash(password)
        new = NewUser(
            username, email, age, password_hash, permissions, self._clock.now(), email_verified
        )
        # The verification intent commits with the account, or neither does.
        mail = []
        if self._mail is not None and self._verify_at_registration and not email_verified:
            mail.append(MailService.message("verify", address=email.lower(), context=context))
        user = await self._users.create(new, mail)
        if mail and self._mail is not None:
            self._mail.notify()
        await self._events.record(
            "user_created", context=context, user_id=user.id, username=user.username
        )
        return user

    async def get(self, user_id: int) -> User:
        """The user ``user_id``.

        Raises:
            NotFound: no such user.
        """
        stored = await self._users.get(user_id)
        if stored is None:
            raise NotFound("user not found")
        return stored.user

    async def username_of(self, user_id: int) -> str | None:
        """The username of ``user_id`` for an event (cached), or ``None`` (no
        such user, or the database is unreachable: an event must not fail)."""
        cached = self._usernames.get(user_id)
        if cached is not None:
            return cached
        try:
            stored = await self._users.get(user_id)
        except Unavailable:
            return None
        if stored is None:
            return None
        if len(self._usernames) >= _USERNAME_CACHE:
            self._usernames.popitem(last=False)
        self._usernames[user_id] = stored.user.username
        return stored.user.username

    async def locked_until(self, user: User) -> datetime | None:
        """Until when ``user``'s account is locked by the login throttle, or ``None``."""
        until = await self._throttle.locked_until(user.username, self._clock.now())
        return None if until is None else utc(until)

    async def unlock(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> None:
        """Lift the login lock of ``user_id`` (an admin's decision).

        Raises:
            NotFound: no such user.
        """
        user = await self.get(user_id)
        await self._throttle.unlock(user.username)
        await self._events.record(
            "authn_login_unlock",
            context=context,
            user_id=user.id,
            username=user.username,
            actor=actor.user_id,
        )

    async def search(
        self, term: str, limit: int = MAX_SEARCH_RESULTS, *, after: str | None = None
    ) -> list[User]:
        """Users whose username contains ``term`` (literally, any case), by
        username; ``after`` (a username) pages on past it."""
        return await self._users.search(term, min(limit, MAX_SEARCH_RESULTS), after)

    async def set_permissions(
        self,
        user_id: int,
        permissions: tuple[str, ...],
        *,
        actor: Principal,
        context: RequestContext | None = None,
    ) -> User:
        """Replace the permissions of ``user_id`` and revoke its access tokens.

        One transaction bumps the token version (older access tokens die) and
        the credential version (a login or refresh that read the user before
        cannot open a session with the old permissions), and records a
        version floor that lasts as long as the user: a token signed late from
        an earlier read is refused however late it comes.

        Raises:
            NotFound: no such user.
        """
        expires_at = WHILE_USER_EXISTS
        mark = Revocation(f"{USER_PREFIX}{user_id}", 0, expires_at)
        stored = await self._users.set_permissions(user_id, permissions, mark)
        if stored is None:
            raise NotFound("user not found")
        self._revocations.revoke_user_before(user_id, stored.token_version, expires_at)
        await self._broadcaster.publish(
            [Revocation(mark.subject, stored.token_version, expires_at)]
        )
        await self._events.record(
            "authz_change",
            context=context,
            user_id=user_id,
            username=stored.user.username,
            actor=actor.user_id,
            permissions=list(stored.user.permissions),
        )
        return stored.user

    async def delete(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> None:
        """Delete ``user_id`` (the user themself or an admin) and revoke its tokens.

        Raises:
            Forbidden: the actor is neither the user nor an admin.
            NotFound: no such user.
        """
        if actor.user_id != user_id and not actor.has(ADMIN):
            await self._events.record(
                "authz_fail",
                outcome="failure",
                context=context,
                user_id=actor.user_id,
                username=await self.username_of(actor.user_id),
                action="delete_user",
                target=user_id,
            )
            raise Forbidden("only the user or an admin may delete an account")
        expires_at = self._revocation_expiry()
        mark = Revocation(f"{USER_PREFIX}{user_id}", DELETED, expires_at)
        username = await self.username_of(user_id)
        if not await self._users.delete(user_id, mark):
            raise NotFound("user not found")
        self._revocations.revoke_user_before(user_id, DELETED, expires_at)
        await self._broadcaster.publish([mark])
        await self._events.record(
            "user_deleted",
            context=context,
            user_id=user_id,
            username=username,
            actor=actor.user_id,
        )
