"""Tokens with ``alg: none`` (and its case variants) must be refused.

RFC 8725 §3.1 (JWT BCP): libraries must let the application pin algorithms;
``none`` in any spelling (CVE-2015-2951 and kin) means anyone can mint a
token by writing JSON.
"""

from __future__ import annotations

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

VARIANTS = ("none", "None", "NONE", "nOnE")


async def run(ctx: AuditContext) -> None:
    """Send the audit's own claims unsigned under each spelling of ``none``."""
    token = await real_token(ctx)
    for alg in VARIANTS:
        forged = jose.unsigned({**token.header, "alg": alg}, token.claims)
        ok, evidence = await accepted(ctx, forged)
        if ok:
            ctx.report(
                "jwt-alg-none",
                f'Unsigned tokens accepted ("alg": "{alg}")',
                Severity.CRITICAL,
                evidence,
                "Pin the accepted algorithms when verifying (PyJWT: algorithms=['HS256']) "
                "and never accept 'none' (RFC 8725 §3.1).",
                ("V3.5.3",),
                ("CWE-347",),
            )
            return


CHECK = Check("jwt-alg-none", "JWT alg none", run)
