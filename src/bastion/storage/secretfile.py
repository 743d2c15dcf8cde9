"""A random secret generated once and kept (mode 0600) in the data directory."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from bastion.storage.keyfile import ensure_private_dir

SECRET_BYTES = 32


@contextlib.contextmanager
def _locked(directory: Path, name: str) -> Iterator[None]:
    # Workers starting at once: one creates the secret, the others read it.
    fd = os.open(directory / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def load_or_create_secret(directory: Path, name: str) -> bytes:
    """The secret in ``directory/name``, generating :data:`SECRET_BYTES` random
    bytes (base64 text, mode 0600) on first use.

    Raises:
        OSError: the directory or file cannot be used.
        ValueError: the file holds something else than a secret.
    """
    ensure_private_dir(directory)
    path = directory / name
    with _locked(directory, name):
        if path.exists():
            secret = base64.b64decode(path.read_text("ascii").strip(), validate=True)
            if len(secret) < SECRET_BYTES:
                raise ValueError(f"{path} holds fewer than {SECRET_BYTES} bytes")
            return secret
        secret = secrets.token_bytes(SECRET_BYTES)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(secret).decode("ascii") + "\n")
        os.replace(tmp, path)
        return secret
