"""A random key kept in a file of the data directory (mode 0600)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from bastion.security.secretbox import KEY_BYTES, decode_key, new_key

MFA_KEY_FILE = "mfa.key"


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600, exclusively) if missing.

    ``O_EXCL`` settles a race of several starting workers: one creates the
    file, the others find it and read it.

    Raises:
        ValueError: the file does not hold base64 of 32 bytes.
        OSError: the file cannot be read or written.
    """
    try:
        return decode_key(path.read_text("ascii"))
    except FileNotFoundError:
        pass
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text("ascii"))
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    assert len(key) == KEY_BYTES
    return key
