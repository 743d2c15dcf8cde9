"""The ``kid`` header must not pick a file or a database row an attacker controls.

Verifiers that read the key from ``open(kid)`` or ``SELECT key ... WHERE
kid = '<kid>'`` let a token name ``/dev/null`` (an empty key) or inject the
key with SQL (jwt_tool's "kid injection" playbook).
"""

from __future__ import annotations

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

TRICKS = (
    ("path traversal to /dev/null", "../../../../../../../../dev/null", b"", "CWE-22"),
    ("SQL injection", "x' UNION SELECT 'bastion-audit' -- ", b"bastion-audit", "CWE-89"),
)


async def run(ctx: AuditContext) -> None:
    """Send HS256 tokens whose key would come from the trick in ``kid``."""
    token = await real_token(ctx)
    for what, kid, key, cwe in TRICKS:
        header = {**token.header, "alg": "HS256", "kid": kid}
        ok, evidence = await accepted(ctx, jose.sign_hmac(header, token.claims, key))
        if ok:
            ctx.report(
                "jwt-kid-injection",
                f"Token key chosen through the kid header ({what})",
                Severity.CRITICAL,
                evidence,
                "Look kid up in a fixed key set; never use it as a path or in a query.",
                ("V3.5.3", "V5.3.4"),
                ("CWE-347", cwe),
            )


CHECK = Check("jwt-kid", "JWT kid path and SQL tricks", run)
