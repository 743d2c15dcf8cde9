"""Keys named by the token itself (``jwk``, ``jku``, ``x5u``) must be ignored.

RFC 7515 §4.1.2-4.1.5: a verifier that trusts them verifies the attacker's
signature with the attacker's key (CVE-2018-0114).
"""

from __future__ import annotations

from typing import Any

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

#: A host that cannot resolve (RFC 6761): the audit never sends a request off the origin.
ELSEWHERE = "https://keys.bastion-audit.invalid"


async def run(ctx: AuditContext) -> None:
    """Sign ES256 with a fresh key and point to it from the header."""
    token = await real_token(ctx)
    private, jwk = jose.new_ec_key()
    headers: dict[str, dict[str, Any]] = {
        "jwk": {"alg": "ES256", "typ": token.header.get("typ", "JWT"), "jwk": jwk},
        "jku": {"alg": "ES256", "jku": f"{ELSEWHERE}/jwks.json", "kid": "bastion-audit"},
        "x5u": {"alg": "ES256", "x5u": f"{ELSEWHERE}/cert.pem"},
    }
    for name, header in headers.items():
        ok, evidence = await accepted(ctx, jose.sign_es256(header, token.claims, private))
        if ok:
            ctx.report(
                "jwt-embedded-key",
                f"Token verified with a key it names itself ({name} header)",
                Severity.CRITICAL,
                evidence,
                "Verify only with keys configured on the server; ignore jwk, jku and x5u "
                "in tokens (RFC 8725 §3.10).",
                ("V3.5.3",),
                ("CWE-347",),
            )
            return


CHECK = Check("jwt-embedded-key", "JWT embedded jwk/jku/x5u", run)
