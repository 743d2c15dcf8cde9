"""The checks, one concern per module, in the order an audit runs them.

Harmless ones first; then the token forgeries (on the audit's own token);
then the ones that spend sessions; the lockout-risking ones last, so that a
throttled account cannot spoil the rest.
"""

from __future__ import annotations

from bastion.audit.checks import (
    cors,
    enumeration_body,
    enumeration_timing,
    headers,
    jwt_alg_none,
    jwt_confusion,
    jwt_embedded_key,
    jwt_expiry,
    jwt_kid,
    jwt_signature,
    jwt_weak_secret,
    logout,
    malformed,
    password_echo,
    refresh_reuse,
    refresh_rotation,
    throttle_bypass,
    throttling,
    token_transport,
)
from bastion.audit.checks.base import Check, Inconclusive, Skipped

ALL_CHECKS: tuple[Check, ...] = (
    headers.CHECK,
    cors.CHECK,
    malformed.CHECK,
    password_echo.CHECK,
    jwt_alg_none.CHECK,
    jwt_signature.CHECK,
    jwt_weak_secret.CHECK,
    jwt_confusion.CHECK,
    jwt_kid.CHECK,
    jwt_embedded_key.CHECK,
    token_transport.CHECK,
    jwt_expiry.CHECK,
    refresh_rotation.CHECK,
    logout.CHECK,
    enumeration_body.CHECK,
    enumeration_timing.CHECK,
    refresh_reuse.CHECK,
    throttling.CHECK,
    throttle_bypass.CHECK,
)

__all__ = ["ALL_CHECKS", "Check", "Inconclusive", "Skipped"]
