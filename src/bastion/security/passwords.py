"""Password hashing: argon2id by default, bcrypt by choice, both always verify.

Hashes are self-describing strings, so the hasher can tell at login whether a
stored hash uses an outdated algorithm or cost and should be replaced
(Django's ``check_password(setter=...)``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal, Protocol

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bastion.security.policy import normalize_password

#: OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
#: OWASP's minimum work factor for bcrypt.
BCRYPT_ROUNDS = 12

#: Our bcrypt hashes pre-hash the password, so bcrypt's 72-byte limit never
#: truncates it silently (every byte counts); the prefix marks the scheme.
BCRYPT_SHA256_PREFIX = "$bcrypt-sha256$"
#: A fixed HMAC key for the pre-hash: it only separates this use of SHA-256
#: from others; bcrypt's salt does the salting. base64 of the digest has no NUL
#: byte, the flaw of feeding raw digests to bcrypt.
_PREHASH_KEY = b"bastion.bcrypt-sha256.v1"
_BCRYPT_MAX_BYTES = 72

HasherName = Literal["argon2", "bcrypt"]


class HashFunction(Protocol):
    """The blocking half of hashing, meant to run on a worker thread."""

    def hash(self, password: str) -> str:
        """Hash a new password."""
        ...

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``; never raises on a bad hash."""
        ...

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` uses another algorithm or weaker parameters."""
        ...


def _prehash(password: str) -> bytes:
    digest = hmac.new(_PREHASH_KEY, password.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


class PasswordHasher:
    """Hashes with the configured algorithm and verifies any supported hash.

    Passwords are NFKC-normalised first (SP 800-63B-4). Everything here is
    CPU-bound and blocking: call it through :class:`bastion.security.hashpool.HashPool`.

    Args:
        algorithm: ``"argon2"`` (argon2id) or ``"bcrypt"`` for new hashes.
        argon2_memory_kib: Argon2 memory cost; never below OWASP's minimum in production.
        argon2_time_cost: Argon2 iterations.
        bcrypt_rounds: bcrypt cost factor.
    """

    def __init__(
        self,
        algorithm: HasherName = "argon2",
        *,
        argon2_memory_kib: int = ARGON2_MEMORY_KIB,
        argon2_time_cost: int = ARGON2_TIME_COST,
        bcrypt_rounds: int = BCRYPT_ROUNDS,
    ) -> None:
        self.algorithm = algorithm
        self._argon2 = argon2.PasswordHasher(
            time_cost=argon2_time_cost,
            memory_cost=argon2_memory_kib,
            parallelism=ARGON2_PARALLELISM,
            type=argon2.Type.ID,
        )
        self._bcrypt_rounds = bcrypt_rounds

    def hash(self, password: str, algorithm: HasherName | None = None) -> str:
        """Hash ``password`` with ``algorithm`` (default: the configured one)."""
        normalized = normalize_password(password)
        if (algorithm or self.algorithm) == "argon2":
            return self._argon2.hash(normalized)
        salt = bcrypt.gensalt(rounds=self._bcrypt_rounds)
        return BCRYPT_SHA256_PREFIX + bcrypt.hashpw(_prehash(normalized), salt).decode("ascii")

    def verify(self, stored: str, password: str) -> bool:
        """Check ``password`` against any hash this hasher understands."""
        normalized = normalize_password(password)
        if stored.startswith("$argon2"):
            try:
                return self._argon2.verify(stored, normalized)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        if stored.startswith(BCRYPT_SHA256_PREFIX):
            inner = stored[len(BCRYPT_SHA256_PREFIX) :].encode("ascii")
            return _bcrypt_check(_prehash(normalized), inner)
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            # A plain bcrypt hash imported from elsewhere was made from at most
            # 72 bytes; verify it the way it was made, then login upgrades it.
            secret = normalized.encode("utf-8")[:_BCRYPT_MAX_BYTES]
            return _bcrypt_check(secret, stored.encode("ascii"))
        return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` should be replaced at the next successful login."""
        if self.algorithm == "argon2":
            if not stored.startswith("$argon2id$"):
                return True
            try:
                return self._argon2.check_needs_rehash(stored)
            except InvalidHashError:
                return True
        if not stored.startswith(BCRYPT_SHA256_PREFIX):
            return True
        try:
            rounds = int(stored[len(BCRYPT_SHA256_PREFIX) :].split("$")[2])
        except (IndexError, ValueError):
            return True
        return rounds < self._bcrypt_rounds


def _bcrypt_check(secret: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(secret, hashed)
    except ValueError:
        return False
