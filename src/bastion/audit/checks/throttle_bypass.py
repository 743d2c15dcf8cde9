"""A throttled client must stay throttled whatever it says about its address.

``X-Forwarded-For`` and kin are set by the client unless a trusted proxy
overwrites them; a limiter keyed by them is reset by sending a new value
(CWE-348; litestar's limiter documents that it does not trust them).
"""

from __future__ import annotations

import secrets

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

HEADERS = (
    "X-Forwarded-For",
    "X-Real-IP",
    "True-Client-IP",
    "X-Client-IP",
    "CF-Connecting-IP",
    "X-Originating-IP",
    "X-Remote-Addr",
    "Forwarded",
)


def _spoofed(names: tuple[str, ...]) -> dict[str, str]:
    # TEST-NET-2 (RFC 5737): never a real client.
    address = f"198.51.100.{secrets.randbelow(254) + 1}"
    return {n: (f"for={address}" if n == "Forwarded" else address) for n in names}


async def run(ctx: AuditContext) -> None:
    """Repeat the throttled login with spoofed client addresses."""
    account = ctx.account
    if ctx.throttled_login is None or account is None:
        raise Skipped("login was not throttled, nothing to bypass")
    wrong = "wrong-" + secrets.token_urlsafe(12)
    together = await ctx.login(account.login_name, wrong, headers=_spoofed(HEADERS))
    if together.throttled:
        return
    culprit = "one of " + ", ".join(HEADERS)
    evidence = ctx.show(together.exchange)
    for name in HEADERS:
        alone = await ctx.login(account.login_name, wrong, headers=_spoofed((name,)))
        if not alone.throttled:
            culprit, evidence = name, ctx.show(alone.exchange)
            break
    ctx.report(
        "throttle-bypass-spoofed-ip",
        f"Login throttling bypassed with a spoofed {culprit} header",
        Severity.HIGH,
        "After the account was throttled, the same login with a made-up client address "
        f"was not:\n\n{ctx.show(ctx.throttled_login.exchange)}\n\n{evidence}",
        "Take the client address from the socket, or from X-Forwarded-For only when the "
        "peer is a configured trusted proxy; throttle per account as well.",
        ("V2.2.1",),
        ("CWE-348",),
    )


CHECK = Check(
    "throttle-bypass",
    "throttling bypass with spoofed IP headers",
    run,
    active=True,
    intrusive=True,
)
