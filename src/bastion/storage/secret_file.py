"""A random key kept in a file of the data directory (mode 0600)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from bastion.security.secretbox import KEY_BYTES, decode_key, new_key

MFA_KEY_FILE = "mfa.key"


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600) if missing.

    The key is written to a private temporary file first and then linked into
    place, which fails if the name exists: of several workers starting at
    once, one creates the file, and the others never see it half-written.

    Raises:
        ValueError: the file does not hold base64 of 32 bytes.
        OSError: the file cannot be read or written.
    """
    try:
        return decode_key(path.read_text("ascii"))
    except FileNotFoundError:
        pass
    key = new_key()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(key).decode("ascii") + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return decode_key(path.read_text("ascii"))
    finally:
        tmp.unlink(missing_ok=True)
    assert len(key) == KEY_BYTES
    return key
