"""Bearer tokens belong in the Authorization header only.

In a query string they land in logs, history and ``Referer`` (RFC 6750 §5.3,
§2.3 "SHOULD NOT"); read from a cookie they ride along on cross-site
requests (CSRF).
"""

from __future__ import annotations

from bastion.audit.checks._jwt import real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

NAMES = ("access_token", "token", "jwt")


async def run(ctx: AuditContext) -> None:
    """Offer the token in the query string, then in cookies, never in the header."""
    await real_token(ctx)
    token = ctx.token or ""
    query = await ctx.call_me(None, params=dict.fromkeys(NAMES, token))
    if 200 <= query.status < 300:
        ctx.report(
            "token-in-query",
            "Access tokens accepted from the query string",
            Severity.MEDIUM,
            ctx.show(query),
            "Read bearer tokens from the Authorization header only (RFC 6750 §2.3, §5.3).",
            ("V3.1.1",),
            ("CWE-598",),
        )
    cookie = "; ".join(f"{name}={token}" for name in NAMES)
    cookie += f"; Authorization=Bearer {token}"
    jar = await ctx.call_me(None, headers={"Cookie": cookie})
    if 200 <= jar.status < 300:
        ctx.report(
            "token-in-cookie",
            "Access tokens accepted from a cookie (cross-site request forgery)",
            Severity.MEDIUM,
            ctx.show(jar),
            "Take API tokens from the Authorization header only, or add CSRF defences.",
            ("V4.2.2",),
            ("CWE-352",),
        )


CHECK = Check("token-transport", "tokens from query string or cookie", run)
