"""The shipped list of weak and example JWT secrets, with where each comes from."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from importlib.resources import files

from bastion.security.policy import common_passwords


@cache
def example_secrets() -> tuple[tuple[str, str], ...]:
    """``(secret, source)`` pairs from ``data/jwt-secrets.tsv``, in file order."""
    text = files("bastion.audit").joinpath("data/jwt-secrets.tsv").read_text("utf-8")
    pairs = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            secret, _, source = line.partition("\t")
            pairs.append((secret, source))
    return tuple(pairs)


def candidate_secrets() -> Iterator[tuple[bytes, str]]:
    """Every secret to try offline, examples first, then the common passwords."""
    seen: set[str] = set()
    for secret, source in example_secrets():
        seen.add(secret)
        yield secret.encode("utf-8"), source
    for password in sorted(common_passwords()):
        if password not in seen:
            yield password.encode("utf-8"), "Bastion's common-password list"
