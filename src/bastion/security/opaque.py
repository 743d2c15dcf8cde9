"""Opaque bearer secrets (refresh tokens): random, shown once, stored hashed."""

from __future__ import annotations

import hashlib
import secrets

#: 32 bytes = 256 bits of entropy, beyond any guessing (RFC 6749 §10.10).
REFRESH_TOKEN_BYTES = 32
#: Longer input is not one of ours; refuse before hashing it.
MAX_OPAQUE_TOKEN_LENGTH = 256


def new_opaque_token() -> str:
    """A fresh URL-safe random token."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def digest_opaque_token(token: str) -> str:
    """The value stored and looked up instead of the token.

    A plain SHA-256 suffices: the input has 256 bits of entropy, so there is
    nothing for a slow hash to protect, and a lookup by digest is constant
    work whatever the guess.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    """Identifier of a refresh-token family (the ``sid`` claim)."""
    return secrets.token_urlsafe(16)
