"""Repeated wrong passwords must be slowed down or refused.

OWASP Authentication cheat sheet and ASVS V2.2.1: without throttling, an
online guessing attack runs at the server's full speed. Lockout-risking:
runs only with ``--intrusive``, on the audit's throwaway account.
"""

from __future__ import annotations

import secrets

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

#: SPEC and NIST SP 800-63B §5.2.2 allow at most 100; common practice is 5 to 10.
ATTEMPTS = 12


async def run(ctx: AuditContext) -> str | None:
    """Send wrong passwords for the account until refused, up to :data:`ATTEMPTS`."""
    account = ctx.account
    if ctx.routes.login is None or account is None:
        raise Skipped("needs the token route and an account")
    sent: list[Exchange] = []
    for _ in range(ATTEMPTS):
        attempt = await ctx.login(account.login_name, "wrong-" + secrets.token_urlsafe(12))
        sent.append(attempt.exchange)
        if attempt.throttled:
            ctx.throttled_login = attempt
            return f"throttled after {len(sent)} wrong passwords ({attempt.exchange.status})"
    ctx.report(
        "no-login-throttling",
        f"No login throttling: {ATTEMPTS} wrong passwords in a row, none refused",
        Severity.HIGH,
        f"{ATTEMPTS} consecutive wrong passwords for one account, statuses "
        f"{[e.status for e in sent]}; the last:\n\n{ctx.show(sent[-1])}",
        "Throttle failed logins per account and per client with increasing delays, "
        "answering 429 with Retry-After (OWASP Authentication cheat sheet).",
        ("V2.2.1",),
        ("CWE-307",),
    )
    return None


CHECK = Check("login-throttling", "login throttling", run, active=True, intrusive=True)
