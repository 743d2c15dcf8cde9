"""User use-cases: register, read, search, change permissions, delete."""

from __future__ import annotations

from bastion.errors import Forbidden, NotFound
from bastion.security.revocation import DELETED, USER_PREFIX, RevocationList
from bastion.security.tokens import LEEWAY_SECONDS
from bastion.services.events import EventRecorder
from bastion.services.passwords import PasswordService
from bastion.storage.protocols import (
    NewUser,
    NullBroadcaster,
    Revocation,
    RevocationBroadcaster,
    UserStore,
)
from bastion.types import ADMIN, Clock, Principal, RequestContext, User

MAX_SEARCH_RESULTS = 50


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
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._events = events
        self._revocations = revocations
        self._clock = clock
        self._access_ttl = access_ttl
        self._broadcaster = broadcaster or NullBroadcaster()

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
    ) -> User:
        """Create an account.

        Raises:
            WeakPassword: the password breaks the policy.
            Conflict: the username or email is taken (decided by the database).
        """
        self._passwords.check_policy(password, username=username)
        self._passwords.admit()
        password_hash = await self._passwords.hash(password)
        new = NewUser(username, email, age, password_hash, permissions, self._clock.now())
        user = await self._users.create(new)
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

        Raises:
            NotFound: no such user.
        """
        expires_at = self._revocation_expiry()
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
                action="delete_user",
                target=user_id,
            )
            raise Forbidden("only the user or an admin may delete an account")
        expires_at = self._revocation_expiry()
        mark = Revocation(f"{USER_PREFIX}{user_id}", DELETED, expires_at)
        if not await self._users.delete(user_id, mark):
            raise NotFound("user not found")
        self._revocations.revoke_user_before(user_id, DELETED, expires_at)
        await self._broadcaster.publish([mark])
        await self._events.record(
            "user_deleted", context=context, user_id=user_id, actor=actor.user_id
        )
