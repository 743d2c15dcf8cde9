"""Password use-cases: check policy, hash and verify off the event loop."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from bastion.security.hashpool import HashPool
from bastion.security.passwords import HasherName, PasswordHasher
from bastion.security.policy import PasswordPolicy


class PasswordService:
    """Policy, hasher and bounded hash pool together.

    Args:
        hasher: Hashes and verifies (blocking).
        pool: Runs the blocking calls on worker threads.
        policy: Rules for new passwords.
    """

    def __init__(self, hasher: PasswordHasher, pool: HashPool, policy: PasswordPolicy) -> None:
        self.hasher = hasher
        self.pool = pool
        self.policy = policy
        self._dummy_hash: str | None = None

    def admit(self) -> None:
        """Shed at once (:class:`bastion.errors.Overloaded`) when hashing is saturated."""
        self.pool.admit()

    def check_policy(self, password: str, *, username: str, field: str = "password") -> None:
        """Raise :class:`bastion.errors.WeakPassword` if ``password`` breaks a rule."""
        self.policy.check(password, username=username, field=field)

    async def hash(self, password: str) -> str:
        """Hash a new password on the pool."""
        return await self.pool.run(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Verify on the pool; with no stored hash, verify against a dummy one.

        The dummy makes a login for an unknown user cost the same as a wrong
        password, so timing does not reveal which usernames exist.
        """
        if stored is None:
            stored = await self._dummy()
            await self.pool.run(self.hasher.verify, stored, password)
            return False
        return await self.pool.run(self.hasher.verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` should be upgraded now that the password is known."""
        return self.hasher.needs_rehash(stored)

    async def warm_up(self, schemes: Mapping[str, int] | None = None) -> None:
        """Compute the dummy hash before the first login needs it.

        Args:
            schemes: How many stored hashes use each scheme. The dummy uses
                the most common one (the configured one on a tie or when
                none is stored), so that unknown names cost what most
                accounts cost even after ``BASTION_PASSWORD_HASHER`` changed.
        """
        counts = dict(schemes or {})
        configured = self.hasher.algorithm
        best = max(counts.values(), default=0)
        algorithm: HasherName = configured
        if counts.get(configured, 0) < best:
            algorithm = "bcrypt" if configured == "argon2" else "argon2"
        self._dummy_hash = await self.pool.run(
            self.hasher.hash, secrets.token_urlsafe(24), algorithm
        )

    @property
    def dummy_scheme(self) -> str | None:
        """The scheme of the dummy hash, once computed (for tests and metrics)."""
        if self._dummy_hash is None:
            return None
        return "argon2" if self._dummy_hash.startswith("$argon2") else "bcrypt"

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.pool.run(self.hasher.hash, secrets.token_urlsafe(24))
        return self._dummy_hash
