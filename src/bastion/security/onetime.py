"""One-time tokens of account recovery (password reset, email verification).

A token is 256 random bits, shown once (in a mail) and stored only as an
HMAC-SHA256 digest under a key the database does not hold: a leaked table
neither reveals a usable token nor lets anyone test guesses offline
(OWASP Forgot Password Cheat Sheet, "URL tokens"; NIST SP 800-63B §5.1.1.2
on keyed digests of secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

#: 32 bytes: far beyond the 128 bits SPEC demands, like refresh tokens.
TOKEN_BYTES = 32
#: ``secrets.token_urlsafe(32)`` is 43 characters of the URL-safe alphabet;
#: anything else is not one of ours and is refused before any lookup.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
#: Purposes; a token of one is worthless for another.
RESET = "reset"
VERIFY = "verify"
EMAIL_CHANGE = "email_change"
PURPOSES = frozenset({RESET, VERIFY, EMAIL_CHANGE})
#: Minimum key length (the HMAC-SHA256 block-size guidance of RFC 2104 §3).
MIN_KEY_BYTES = 32


def new_onetime_token() -> str:
    """A fresh token (URL-safe, fit for a link fragment)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of a token we issue."""
    return TOKEN_PATTERN.fullmatch(value) is not None


class TokenDigester:
    """Keyed digests of one-time tokens.

    Args:
        key: At least :data:`MIN_KEY_BYTES` secret bytes.

    Raises:
        ValueError: for a shorter key.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def digest(self, purpose: str, token: str) -> str:
        """The stored form of ``token`` for ``purpose`` (64 hex characters).

        The purpose is part of the MAC input, so a digest computed for one
        purpose never matches a lookup for another.
        """
        message = f"{purpose}\x00{token}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
