"""Logging out must end the session: its access and refresh tokens stop working.

A stateless JWT "logout" that only asks the client to forget the token
leaves a stolen token valid until it expires (OWASP Session Management
cheat sheet; fastapi-users' JWT strategy documents exactly this).
"""

from __future__ import annotations

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

_ASVS = ("V3.3.1",)
_CWE = ("CWE-613",)


async def run(ctx: AuditContext) -> None:
    """Log in afresh, log out, then try the access and refresh tokens again."""
    if ctx.routes.login is None or ctx.routes.me is None:
        raise Skipped("needs the token route and a protected route")
    session = await ctx.fresh_session()
    if session is None:
        raise Skipped("could not log in")
    if ctx.routes.logout is None:
        ctx.report(
            "logout-missing",
            "No logout route: a token cannot be revoked before it expires",
            Severity.MEDIUM,
            f"No logout route in the OpenAPI document; tokens come from {ctx.routes.login.path}.",
            "Offer logout that revokes the session server-side (a deny-list of jti or "
            "session ids checked on every request).",
            _ASVS,
            _CWE,
        )
        return
    bye = await ctx.client.request(
        "POST", ctx.routes.logout, headers={"Authorization": f"Bearer {session.access_token}"}
    )
    if bye.status >= 400:
        raise Skipped(f"logout answered {bye.status}")
    after = await ctx.call_me(session.access_token)
    if 200 <= after.status < 300:
        ctx.report(
            "logout-not-revoking",
            "Logout does not revoke the access token",
            Severity.HIGH,
            ctx.show(bye) + "\n\n" + ctx.show(after),
            "Record the session (sid/jti) as revoked at logout and check it on every request.",
            _ASVS,
            _CWE,
        )
    if session.refresh_token and ctx.routes.refresh:
        renewed = await ctx.refresh(session.refresh_token)
        if 200 <= renewed.status < 300:
            ctx.report(
                "logout-refresh-alive",
                "Logout leaves the refresh token usable",
                Severity.HIGH,
                ctx.show(bye) + "\n\n" + ctx.show(renewed),
                "Revoke the whole refresh-token family at logout.",
                _ASVS,
                _CWE,
            )


CHECK = Check("logout", "logout revokes tokens", run, active=True)
