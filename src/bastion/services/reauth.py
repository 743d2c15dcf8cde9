"""Re-authentication by current password before a sensitive change.

Enrolling or removing a factor, and new recovery codes, ask for the current
password again (OWASP ASVS 5.0 V6.3.x; NIST SP 800-63B-4 §4.2.3), so a stolen
access token alone cannot turn MFA off or take the recovery codes. This is the
one place that check lives: a throttled version can replace it by itself.
"""

from __future__ import annotations

from typing import Protocol

from bastion.errors import InvalidToken, WrongPassword
from bastion.services.passwords import PasswordService
from bastion.storage.protocols import StoredUser, UserStore
from bastion.types import RequestContext


class CurrentPasswordCheck(Protocol):
    """Verifies the caller's current password; raises :class:`WrongPassword`."""

    async def __call__(
        self, user_id: int, password: str, *, context: RequestContext | None = None
    ) -> StoredUser:
        """The user, once ``password`` is theirs."""
        ...


class PasswordReauth:
    """The plain check: one verification off the event loop.

    Args:
        users: The user store.
        passwords: Hashing service.
    """

    def __init__(self, users: UserStore, passwords: PasswordService) -> None:
        self._users = users
        self._passwords = passwords

    async def __call__(
        self, user_id: int, password: str, *, context: RequestContext | None = None
    ) -> StoredUser:
        """The user, once ``password`` is theirs.

        Raises:
            InvalidToken: the user no longer exists.
            WrongPassword: the password is not theirs (400 ``wrong_password``).
        """
        stored = await self._users.get(user_id)
        if stored is None:
            raise InvalidToken()
        if not await self._passwords.verify(stored.password_hash, password):
            raise WrongPassword()
        return stored
