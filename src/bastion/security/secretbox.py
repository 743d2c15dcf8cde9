"""Authenticated encryption of small secrets at rest (AES-256-GCM).

TOTP shared secrets must be readable by the server (it computes the codes),
so they cannot be hashed like passwords; they are encrypted instead, and a
copy of the database alone does not yield them (OWASP ASVS 5.0 V11.3, NIST
SP 800-38D). The associated data binds each ciphertext to its row, so a
ciphertext copied onto another user's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
#: SP 800-38D §8.2.2: 96-bit random nonces; at 2^32 messages per key at most,
#: far beyond the number of TOTP enrolments of any deployment.
NONCE_BYTES = 12


class SecretBoxError(ValueError):
    """A ciphertext that is malformed or was not made with this key and context."""


def new_key() -> bytes:
    """A fresh random key."""
    return os.urandom(KEY_BYTES)


def decode_key(text: str) -> bytes:
    """A key from its base64 text.

    Raises:
        ValueError: not base64 of exactly 32 bytes.
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the key must be base64 of 32 bytes") from exc
    if len(key) != KEY_BYTES:
        raise ValueError("the key must be base64 of 32 bytes")
    return key


class SecretBox:
    """Encrypts and decrypts with one AES-256-GCM key.

    Args:
        key: 32 random bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, context: str) -> str:
        """Encrypt ``plaintext`` bound to ``context``; base64 text of nonce + ciphertext."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, context: str) -> bytes:
        """Decrypt what :meth:`seal` made with the same ``context``.

        Raises:
            SecretBoxError: tampered, truncated, another key or another context.
        """
        try:
            raw = base64.b64decode(token, validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretBoxError("the ciphertext does not open") from exc
