"""Access tokens must expire soon, and expired ones must be refused.

RFC 8725 §3.10 and OWASP's JWT cheat sheet: without ``exp`` a stolen token
works for ever; long lifetimes stretch the window; a verifier that skips the
``exp`` check is found by forging an expired token once the key is known.
"""

from __future__ import annotations

import secrets
import time

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

HOUR = 3600
DAY = 24 * HOUR


def _lifetime(claims: dict[str, object], issued: float) -> float | None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return None
    iat = claims.get("iat")
    start = iat if isinstance(iat, int | float) else issued
    return float(exp) - float(start)


async def run(ctx: AuditContext) -> None:
    """Read the lifetime from the audit's own token; forge an expired one if keyed."""
    token = await real_token(ctx)
    lifetime = _lifetime(token.claims, time.time())
    claims_text = f"token claims: {sorted(token.claims)}"
    if "exp" not in token.claims:
        ctx.report(
            "jwt-no-expiry",
            "Access tokens carry no exp claim: they never expire",
            Severity.HIGH,
            claims_text,
            "Issue short-lived access tokens (minutes) with exp, and require it when verifying.",
            ("V3.3.1",),
            ("CWE-613",),
        )
    elif lifetime is not None and lifetime > HOUR:
        ctx.report(
            "jwt-long-expiry",
            f"Access tokens live {lifetime / HOUR:.1f} hours",
            Severity.MEDIUM if lifetime > DAY else Severity.LOW,
            f"{claims_text}; exp - iat = {lifetime:.0f} s",
            "Keep access tokens short-lived (15 minutes is common) and use refresh tokens.",
            ("V3.3.1",),
            ("CWE-613",),
        )
    if ctx.known_key is not None and jose.is_hmac(token.alg):
        now = int(time.time())
        claims = {**token.claims, "iat": now - 2 * HOUR, "exp": now - HOUR}
        claims["jti"] = secrets.token_hex(8)
        forged = jose.sign_hmac(token.header, claims, ctx.known_key)
        ok, evidence = await accepted(ctx, forged)
        if ok:
            ctx.report(
                "jwt-expired-accepted",
                "Expired tokens are accepted",
                Severity.HIGH,
                "A token signed with the recovered key, expired an hour ago:\n\n" + evidence,
                "Verify exp (PyJWT does unless told not to: remove verify_exp=False).",
                ("V3.3.1",),
                ("CWE-613",),
            )


CHECK = Check("jwt-expiry", "JWT exp missing, excessive, or not enforced", run)
