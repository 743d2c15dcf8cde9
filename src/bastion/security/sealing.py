"""Encryption at rest of queued mail that carries a token (AES-256-GCM).

A queued reset mail holds a live credential; the outbox row keeps only
ciphertext, so a database dump or backup taken while it waits reveals nothing
(OWASP Cryptographic Storage Cheat Sheet: authenticated encryption, a fresh
96-bit nonce per message, NIST SP 800-38D §8.2.2). The row id is bound in as
associated data, so a sealed body cannot be moved to another row.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
KEY_BYTES = 32


class SealError(ValueError):
    """A sealed value does not open with this key (tampered, or another key)."""


class Sealer:
    """Seal and open byte strings with one AES-256-GCM key.

    Args:
        key: Exactly :data:`KEY_BYTES` secret bytes.

    Raises:
        ValueError: for a key of another length.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the sealing key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, context: bytes) -> str:
        """Encrypt ``plaintext`` bound to ``context``; returns ASCII text."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, context)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str, *, context: bytes) -> bytes:
        """Decrypt what :meth:`seal` produced with the same ``context``.

        Raises:
            SealError: wrong key, wrong context, or tampered text.
        """
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except (InvalidTag, ValueError) as exc:
            raise SealError("the sealed value does not open") from exc


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` from one master secret (HKDF-SHA256,
    RFC 5869, with an empty salt: the secret is already uniformly random or
    at least 32 configured bytes)."""
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(
        secret
    )
