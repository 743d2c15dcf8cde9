"""Password policy after NIST SP 800-63B-4 §3.1.1.2: length and blocklist, no
composition rules."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from bastion.errors import WeakPassword

#: SP 800-63B-4 lets verifiers cap length but asks for at least 64; 1024 keeps
#: the hashing cost of one request bounded.
MAX_PASSWORD_LENGTH = 1024


@cache
def common_passwords() -> frozenset[str]:
    """The shipped blocklist (NFKC, case-folded); see ``data/common-passwords.NOTICE``."""
    text = files("bastion.security").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def normalize_password(password: str) -> str:
    """NFKC-normalise a password exactly as typed (no trimming).

    SP 800-63B-4 asks for normalisation so that the same password typed on two
    keyboards hashes the same.
    """
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """The rules a new password must meet.

    Attributes:
        min_length: Minimum length in code points, counted as typed.
        max_length: Maximum length in code points.
        blocklist: Case-folded passwords refused outright.
    """

    min_length: int = 15
    max_length: int = MAX_PASSWORD_LENGTH
    blocklist: frozenset[str] = frozenset()

    def check(self, password: str, *, username: str | None = None, field: str = "password") -> None:
        """Raise :class:`WeakPassword` naming the first rule ``password`` breaks.

        Args:
            password: The new password, exactly as typed.
            username: The account's username, which the password must not contain.
            field: The input field, reported with the error.
        """
        length = len(password)
        if length < self.min_length:
            raise WeakPassword(
                f"password must be at least {self.min_length} characters",
                code="password_too_short",
                field=field,
            )
        if length > self.max_length:
            raise WeakPassword(
                f"password must be at most {self.max_length} characters",
                code="password_too_long",
                field=field,
            )
        folded = normalize_password(password).casefold()
        if folded in self.blocklist:
            raise WeakPassword(
                "password is in a list of common or breached passwords",
                code="password_too_common",
                field=field,
            )
        if username and username.casefold() in folded:
            raise WeakPassword(
                "password must not contain the username",
                code="password_contains_username",
                field=field,
            )
