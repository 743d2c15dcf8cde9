"""Authentication method references (RFC 8176) and what counts as multi-factor."""

from __future__ import annotations

from collections.abc import Collection

#: RFC 8176 §2 values Bastion issues.
PASSWORD, OTP, HARDWARE_KEY, SOFTWARE_KEY, USER_VERIFIED, MULTI_FACTOR = (
    "pwd",
    "otp",
    "hwk",
    "swk",
    "user",
    "mfa",
)


def is_multi_factor(amr: Collection[str]) -> bool:
    """Whether a session was authenticated with more than one factor.

    ``mfa`` says so outright (password plus a second factor). A passkey with
    user verification is one multi-factor authenticator by itself (NIST SP
    800-63B-4 §3.1.7: something you have, unlocked by something you know or
    are), so ``hwk``/``swk`` with ``user`` counts too.
    """
    if MULTI_FACTOR in amr:
        return True
    return USER_VERIFIED in amr and (HARDWARE_KEY in amr or SOFTWARE_KEY in amr)
