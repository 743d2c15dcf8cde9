"""Refresh tokens must be single use: each refresh returns a new one.

RFC 9700 (OAuth 2.0 Security BCP) §4.14.2: refresh tokens for public
clients are sender-constrained or rotated, so a stolen one is detected when
both thief and owner use it. Reuse is tested later (``refresh-reuse``), after
any grace window for concurrent tabs has passed.
"""

from __future__ import annotations

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity


async def run(ctx: AuditContext) -> None:
    """Refresh a fresh session once and compare the refresh tokens."""
    if ctx.routes.refresh is None:
        raise Skipped("no refresh route")
    session = await ctx.fresh_session()
    if session is None:
        raise Skipped("could not log in")
    if session.refresh_token is None:
        raise Skipped("the token response carries no refresh token")
    first = await ctx.refresh(session.refresh_token)
    body = first.json()
    if not 200 <= first.status < 300 or not isinstance(body, dict):
        raise Skipped(f"refresh answered {first.status}")
    new = body.get("refresh_token") or body.get("refreshToken")
    if not isinstance(new, str) or new == session.refresh_token:
        ctx.report(
            "refresh-not-rotated",
            "Refresh tokens are not rotated (the same token refreshes again and again)",
            Severity.HIGH,
            ctx.show(first),
            "Issue a new refresh token on every refresh and retire the old one; revoke the "
            "family when a retired one comes back (RFC 9700 §4.14.2).",
            ("V3.5.3",),
            ("CWE-294", "CWE-613"),
        )
        return
    ctx.redact.add(new)
    ctx.spent_refresh = (ctx.clock(), session.refresh_token, new)


CHECK = Check("refresh-rotation", "refresh token rotation", run, active=True)
