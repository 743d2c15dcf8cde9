"""Recovery codes: the fallback second factor, shown once, stored as digests.

Each code carries 80 bits from the OS random source (NIST SP 800-63B-4
§3.1.2 asks look-up secrets for at least 64 bits), in Crockford's base32
alphabet (no I, L, O, U: nothing to misread), grouped for typing. With that
much entropy a plain SHA-256 digest is enough: there is nothing for a slow
hash to protect, and the lookup by digest is constant work.
"""

from __future__ import annotations

import hashlib
import secrets

COUNT = 10
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_LENGTH = 16  # 16 x 5 bits = 80 bits
_GROUP = 4
#: Longer input is not a recovery code; refused before any work.
MAX_INPUT = 64
#: What people type for the look-alike characters (Crockford base32).
_TYPO = str.maketrans({"i": "1", "l": "1", "o": "0"})


def new_codes(count: int = COUNT) -> list[str]:
    """``count`` fresh codes, formatted ``xxxx-xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append("-".join(raw[i : i + _GROUP] for i in range(0, _LENGTH, _GROUP)))
    return codes


def normalise(code: str) -> str | None:
    """The canonical form of a typed code (case, spaces, dashes, look-alikes
    forgiven), or ``None`` if it cannot be one."""
    if len(code) > MAX_INPUT:
        return None
    cleaned = code.strip().lower().replace("-", "").replace(" ", "").translate(_TYPO)
    if len(cleaned) != _LENGTH or any(char not in _ALPHABET for char in cleaned):
        return None
    return cleaned


def digest_code(code: str) -> str | None:
    """The stored digest of a typed code, or ``None`` if it cannot be one."""
    canonical = normalise(code)
    if canonical is None:
        return None
    return hashlib.sha256(f"bastion-recovery:{canonical}".encode()).hexdigest()
