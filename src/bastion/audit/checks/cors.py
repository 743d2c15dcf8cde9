"""CORS must not reflect arbitrary origins, least of all with credentials.

A reflected ``Access-Control-Allow-Origin`` with ``-Allow-Credentials: true``
lets any site read the API's answers with the victim's cookies (OWASP HTML5
Security cheat sheet, PortSwigger "CORS misconfigurations").
"""

from __future__ import annotations

from bastion.audit.checks.base import Check
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

EVIL = "https://evil.bastion-audit.invalid"


def _judge(ctx: AuditContext, exchange: Exchange, origin: str) -> bool:
    allowed = exchange.header("access-control-allow-origin")
    credentials = (exchange.header("access-control-allow-credentials") or "").lower() == "true"
    if allowed not in (origin, "*") or (allowed == "*" and not credentials):
        return False
    ctx.report(
        "cors-reflection",
        f"CORS allows {'any origin' if allowed == '*' else 'a foreign origin'}"
        + (" with credentials" if credentials else ""),
        Severity.HIGH if credentials else Severity.MEDIUM,
        ctx.show(exchange, "access-control-allow-methods", "access-control-allow-headers"),
        "Allow only a fixed list of trusted origins; never echo the Origin header.",
        ("V14.5.3",),
        ("CWE-942",),
    )
    return True


async def run(ctx: AuditContext) -> None:
    """A preflight and a simple request from a foreign origin, and from ``null``."""
    path = ctx.routes.me or (ctx.routes.login.path if ctx.routes.login else "/")
    preflight = await ctx.client.request(
        "OPTIONS",
        path,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    if _judge(ctx, preflight, EVIL):
        return
    simple = await ctx.client.request("GET", path, headers={"Origin": "null"})
    _judge(ctx, simple, "null")


CHECK = Check("cors", "CORS origin reflection", run)
