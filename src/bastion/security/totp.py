"""Time-based one-time passwords (RFC 6238) with replay protection.

The parameters are those every authenticator app supports: HMAC-SHA-1, six
digits, 30-second steps (RFC 6238 §4, §5.2; Google Authenticator's key URI
format). One step of clock drift is accepted either way (§5.2 recommends at
most one). A code is accepted at most once: the verifier returns the time step
it matched, and the caller accepts it only if it is later than the last step
used (§5.2: "the verifier MUST NOT accept the second attempt of the same
OTP"), advancing that step atomically in storage.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from typing import Any

import pyotp

STEP_SECONDS = 30
DIGITS = 6
#: Steps of drift accepted before and after the current one.
SKEW_STEPS = 1
#: RFC 4226 §4 R6: at least 128 bits of shared secret; 160 is SHA-1's block-
#: friendly size and what authenticator apps expect (32 base32 characters).
SECRET_BYTES = 20


def new_secret() -> str:
    """A fresh base32 shared secret (160 bits)."""
    return pyotp.random_base32(length=32)


def current_step(now: float) -> int:
    """The RFC 6238 time step ``T`` of ``now`` (T0 = 0)."""
    return math.floor(now / STEP_SECONDS)


def is_well_formed(code: str, digits: int = DIGITS) -> bool:
    """Whether ``code`` is exactly ``digits`` ASCII digits."""
    return len(code) == digits and code.isascii() and code.isdigit()


class TotpVerifier:
    """Computes and checks codes of one secret.

    Args:
        secret: Base32 shared secret.
        digits: Code length (6 in Bastion; 8 for the RFC's test vectors).
        digest: Hash constructor (SHA-1 in Bastion; the RFC also tests SHA-256/512).
    """

    def __init__(
        self, secret: str, *, digits: int = DIGITS, digest: Callable[..., Any] = hashlib.sha1
    ) -> None:
        self._totp = pyotp.TOTP(secret, digits=digits, digest=digest, interval=STEP_SECONDS)
        self._digits = digits

    def code_at(self, step: int) -> str:
        """The code of time step ``step``."""
        return self._totp.generate_otp(step)

    def match(self, code: str, now: float, *, after_step: int = -1) -> int | None:
        """The step within the skew window whose code is ``code``, if any.

        Steps at or before ``after_step`` (already used) never match, so a
        replayed code, or one older than a code already used, is refused.
        """
        if not is_well_formed(code, self._digits):
            return None
        here = current_step(now)
        found = None
        # Every candidate is compared, in constant time, so the time taken
        # does not say which step matched.
        for step in range(here - SKEW_STEPS, here + SKEW_STEPS + 1):
            if hmac.compare_digest(self.code_at(step), code) and step > after_step:
                found = step
        return found

    def provisioning_uri(self, *, account: str, issuer: str) -> str:
        """The ``otpauth://totp/...`` URI that authenticator apps scan."""
        return self._totp.provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an inline SVG QR code (no XML declaration).

    Error correction level M, the common choice for screen-scanned codes.
    """
    import segno

    return str(segno.make(uri, error="m").svg_inline(scale=4, border=2))
