"""A spent refresh token that comes back must be refused and end its family.

Run last among the session checks so that the wait for the target's grace
window (``--refresh-grace``) overlaps the others.
"""

from __future__ import annotations

import asyncio

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

_ASVS = ("V3.5.3",)
_CWE = ("CWE-294",)


async def run(ctx: AuditContext) -> None:
    """Replay the spent token, then see whether its successor still works."""
    if ctx.spent_refresh is None:
        raise Skipped("no rotated refresh token to replay")
    spent_at, old, successor = ctx.spent_refresh
    wait = spent_at + ctx.options.refresh_grace - ctx.clock()
    if wait > 0:
        await asyncio.sleep(wait)
    replay = await ctx.refresh(old)
    if 200 <= replay.status < 300:
        ctx.report(
            "refresh-reuse-undetected",
            "A spent refresh token works again (reuse not detected)",
            Severity.HIGH,
            ctx.show(replay),
            "Refuse a retired refresh token and revoke its whole family, a security event "
            "(RFC 9700 §4.14.2).",
            _ASVS,
            _CWE,
        )
        return
    heir = await ctx.refresh(successor)
    if 200 <= heir.status < 300:
        ctx.report(
            "refresh-reuse-family-alive",
            "Reuse of a spent refresh token is refused but its family lives on",
            Severity.MEDIUM,
            ctx.show(replay) + "\n\n" + ctx.show(heir),
            "On reuse, revoke every token of the family: the thief may hold the newest one.",
            _ASVS,
            _CWE,
        )


CHECK = Check("refresh-reuse", "refresh token reuse detection", run, active=True)
