"""Error responses must not echo a submitted password.

FastAPI's default 422 body repeats the offending ``input`` (for a missing
field, the whole body), so a password lands in client logs, proxies and
error trackers (OWASP Logging cheat sheet: never log credentials).
"""

from __future__ import annotations

import secrets

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity


async def run(ctx: AuditContext) -> None:
    """Send a canary password with a required field missing; look for it in the answer."""
    canary = "BastionAuditCanary-" + secrets.token_hex(6)
    sent: list[Exchange] = []
    if ctx.routes.register:
        sent.append(
            await ctx.client.request(
                "POST", ctx.routes.register.path, json_body={"password": canary}
            )
        )
    login = ctx.routes.login
    if login:
        if login.form:
            sent.append(await ctx.client.request("POST", login.path, data={"password": canary}))
        else:
            sent.append(
                await ctx.client.request("POST", login.path, json_body={"password": canary})
            )
    if not sent:
        raise Skipped("no login or registration route")
    echoed = [e for e in sent if canary in e.body]
    if echoed:
        ctx.report(
            "password-echo",
            "Error responses echo the submitted password",
            Severity.MEDIUM,
            "\n\n".join(ctx.show(e) for e in echoed),
            "Leave submitted values out of validation errors for secret fields "
            "(FastAPI: a RequestValidationError handler that drops 'input').",
            ("V7.1.1",),
            ("CWE-200",),
        )


CHECK = Check("password-echo", "password echo in errors", run, active=True)
