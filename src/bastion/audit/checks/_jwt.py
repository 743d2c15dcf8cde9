"""Shared set-up of the token checks: a real token and a route that needs one."""

from __future__ import annotations

from bastion.audit import jose
from bastion.audit.checks.base import Skipped
from bastion.audit.context import AuditContext


async def real_token(ctx: AuditContext) -> jose.Jwt:
    """The audit's JWT, once a protected route is known to take it and refuse none.

    Raises:
        Skipped: No token, no protected route, or the token is not a JWT.
    """
    token = ctx.token
    if token is None:
        raise Skipped("no access token (give --user/--password or --token)")
    if ctx.routes.me is None:
        raise Skipped("no protected route found (name one with --me-path)")
    parsed = jose.parse(token)
    if parsed is None:
        raise Skipped("the access token is not a JWT")
    if not ctx.jwt_baseline:
        anonymous = await ctx.call_me(None)
        if 200 <= anonymous.status < 300:
            raise Skipped(f"{ctx.routes.me} answers {anonymous.status} without a token")
        real = await ctx.call_me(token)
        if not 200 <= real.status < 300:
            raise Skipped(f"{ctx.routes.me} refuses the audit's own token ({real.status})")
        ctx.jwt_baseline = True
    return parsed


async def accepted(ctx: AuditContext, token: str) -> tuple[bool, str]:
    """Whether the protected route accepts ``token``, and the evidence."""
    exchange = await ctx.call_me(token)
    return 200 <= exchange.status < 300, ctx.show(exchange)
