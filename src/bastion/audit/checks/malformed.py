"""Malformed input must get a 4xx, never a 5xx, and never a stack trace.

OWASP Error Handling cheat sheet: an unhandled error is a denial-of-service
lever and, with a trace, a map of the code.
"""

from __future__ import annotations

import re
import secrets

from bastion.audit.checks.base import Check
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext, registration_body
from bastion.audit.findings import Severity

STACK_TRACE = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|"
    r"\bat [\w.$]+\([\w]+\.java:\d+\)|sqlalchemy\.exc\.|asyncpg\.exceptions|"
    r"psycopg2?\.errors|node_modules/|System\.\w+Exception",
)

#: Past bcrypt's 72-byte limit (bcrypt 5 raises, older versions truncated).
LONG_PASSWORD = "Bastion-audit-" + "é" * 60 + secrets.token_hex(4)


async def _probes(ctx: AuditContext) -> list[Exchange]:
    sent: list[Exchange] = []
    if ctx.routes.me:
        for token in ("bastion-audit.not-a.jwt", "eyJhbGciOiJIUzI1NiJ9.e30"):
            sent.append(await ctx.call_me(token))
    if ctx.options.passive:
        return sent
    login = ctx.routes.login
    if login:
        sent.append(
            await ctx.client.request(
                "POST",
                login.path,
                content=b'{"username": "bastion-audit", "password": ',
                headers={"Content-Type": "application/json"},
            )
        )
    register = ctx.routes.register
    if register:
        sent.append(
            await ctx.client.request(
                "POST",
                register.path,
                content=b"[1, {",
                headers={"Content-Type": "application/json"},
            )
        )
        name = "audit" + secrets.token_hex(5)
        body = registration_body(
            register, username=name, email=f"{name}@example.com", password=LONG_PASSWORD
        )
        sent.append(await ctx.client.request("POST", register.path, json_body=body))
    return sent


async def run(ctx: AuditContext) -> None:
    """Garbage tokens, truncated JSON, and a password longer than 72 bytes."""
    sent = await _probes(ctx)
    failures = [e for e in sent if e.status >= 500]
    traces = [e for e in sent if STACK_TRACE.search(e.body)]
    if traces:
        ctx.report(
            "stack-trace",
            "Responses disclose a stack trace",
            Severity.HIGH,
            "\n\n".join(ctx.show(e) for e in traces),
            "Turn debug mode off in production and answer unexpected errors with a "
            "generic JSON 500 carrying a request id.",
            ("V7.4.1", "V14.3.2"),
            ("CWE-209",),
        )
    if failures:
        ctx.report(
            "server-error-on-bad-input",
            f"Malformed input causes server errors ({len(failures)} of {len(sent)} probes)",
            Severity.MEDIUM,
            "\n\n".join(ctx.show(e) for e in failures),
            "Validate input and map every client mistake to a 4xx (a garbage token is a "
            "401, an over-long password a 422).",
            ("V7.4.1",),
            ("CWE-755",),
        )


CHECK = Check("malformed-input", "5xx and stack traces on malformed input", run)
