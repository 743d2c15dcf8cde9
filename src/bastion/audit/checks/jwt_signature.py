"""A token whose signature is removed, replaced or no longer matches must be refused.

A verifier that decodes without verifying (``verify_signature: False``, a
``decode`` used where ``verify`` was meant) accepts all three.
"""

from __future__ import annotations

import secrets

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity


async def run(ctx: AuditContext) -> None:
    """Try the signature stripped, a random one, and altered claims with the old one."""
    token = await real_token(ctx)
    parts = ctx.token.split(".") if ctx.token else []
    header_b64, claims_b64 = parts[0], parts[1]
    random_signature = jose.b64url(secrets.token_bytes(max(len(token.signature), 32)))
    tampered = jose.unsigned(token.header, {**token.claims, "bastion_audit": True})
    tampered = tampered.rsplit(".", 1)[0] + "." + parts[2]
    variants = {
        "signature stripped": f"{header_b64}.{claims_b64}.",
        "signature replaced by random bytes": f"{header_b64}.{claims_b64}.{random_signature}",
        "claims altered, signature kept": tampered,
    }
    for what, forged in variants.items():
        ok, evidence = await accepted(ctx, forged)
        if ok:
            ctx.report(
                "jwt-signature-not-verified",
                f"Token signatures are not verified ({what})",
                Severity.CRITICAL,
                evidence,
                "Verify every token's signature with the expected key before trusting any "
                "claim (RFC 7519 §7.2).",
                ("V3.5.3",),
                ("CWE-347",),
            )
            return


CHECK = Check("jwt-signature", "JWT signature stripped or swapped", run)
