"""Signing keys kept in a JSON file (mode 0600) in the data directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from bastion.security.keys import (
    Algorithm,
    KeyRing,
    SigningKey,
    generate_key,
    key_from_record,
    key_to_record,
)

KEY_FILE = "keys.json"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if missing and make sure it is not group/world-readable."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Several workers may start at once; one creates the first key, the others read it.
    fd = os.open(directory / ".keys.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class KeyFile:
    """The data directory's key file.

    Args:
        directory: The data directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / KEY_FILE

    def mtime(self) -> float:
        """Modification time, to notice a rotation cheaply (0 if missing)."""
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def read(self) -> list[SigningKey]:
        """Every stored key, oldest first."""
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        return [key_from_record(record) for record in data.get("keys", [])]

    def _write(self, keys: list[SigningKey]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"keys": [key_to_record(key) for key in keys]}, handle, indent=1)
        os.replace(tmp, self.path)

    def load_or_create(self, algorithm: Algorithm, *, now: float) -> KeyRing:
        """The ring of ``algorithm`` keys, generating the first one if there is none."""
        ensure_private_dir(self.directory)
        with _locked(self.directory):
            keys = self.read()
            mine = [key for key in keys if key.algorithm == algorithm]
            if not mine:
                fresh = generate_key(algorithm, created_at=now)
                self._write([*keys, fresh])
                mine = [fresh]
        return KeyRing(mine)

    def rotate(self, algorithm: Algorithm, *, now: float, retire_after: float) -> SigningKey:
        """Add a new signing key and drop keys no live token can be signed with.

        A key is retired once a newer key has been signing for ``retire_after``
        seconds (the access-token lifetime plus the reload delay).
        """
        ensure_private_dir(self.directory)
        with _locked(self.directory):
            keys = self.read()
            fresh = generate_key(algorithm, created_at=now)
            kept: list[SigningKey] = []
            for index, key in enumerate(keys):
                successor = next(
                    (k for k in keys[index + 1 :] if k.algorithm == key.algorithm), None
                )
                if successor is None or now - successor.created_at < retire_after:
                    kept.append(key)
            self._write([*kept, fresh])
        return fresh
