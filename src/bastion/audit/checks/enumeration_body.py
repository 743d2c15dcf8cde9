"""Login must answer an unknown user exactly as it answers a wrong password.

OWASP Authentication cheat sheet, "Authentication and error messages": a
distinct status or message tells an attacker which accounts exist.
"""

from __future__ import annotations

import re
import secrets

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext, registration_body
from bastion.audit.findings import Severity

#: Request ids, timestamps and the like differ between any two answers.
_VOLATILE = re.compile(r"[0-9a-fA-F-]{16,}|\d+(\.\d+)?")
_TAKEN = re.compile(r"exist|taken|already|in use|registered|duplicate", re.I)


def _shape(exchange: Exchange) -> tuple[int, str]:
    return exchange.status, _VOLATILE.sub("#", exchange.body)


async def run(ctx: AuditContext) -> None:
    """Compare a wrong password for the audit's account with an unknown user."""
    account = ctx.account
    if ctx.routes.login is None or account is None:
        raise Skipped("needs the token route and an account")
    unknown = await ctx.login("nobody" + secrets.token_hex(6), secrets.token_urlsafe(18))
    wrong = await ctx.login(account.login_name, secrets.token_urlsafe(18))
    if unknown.throttled or wrong.throttled:
        raise Skipped("login is throttled")
    if _shape(unknown.exchange) != _shape(wrong.exchange):
        ctx.report(
            "user-enumeration-login",
            "Login tells unknown users from wrong passwords",
            Severity.MEDIUM,
            ctx.show(unknown.exchange) + "\n\n" + ctx.show(wrong.exchange),
            'Answer every failed login identically (RFC 6749 §5.2 "invalid_grant").',
            ("V2.2.1",),
            ("CWE-204",),
        )
    register = ctx.routes.register
    if register is not None and account.registered:
        name = account.login_name.split("@")[0]
        again = await ctx.client.request(
            "POST",
            register.path,
            json_body=registration_body(
                register,
                username=name,
                email=f"{name}@example.com",
                password=secrets.token_urlsafe(18),
            ),
        )
        if 400 <= again.status < 500 and (again.status == 409 or _TAKEN.search(again.body)):
            ctx.report(
                "user-enumeration-register",
                "Registration says which usernames or addresses are taken",
                Severity.LOW,
                ctx.show(again),
                "Accept the registration and send a mail to the existing address instead, "
                "or rate-limit registration tightly (OWASP Authentication cheat sheet).",
                ("V2.2.1",),
                ("CWE-204",),
            )


CHECK = Check("user-enumeration-body", "user enumeration by response", run, active=True)
