"""RS/ES-signed tokens: the public key from the JWKS must not verify an HS256 MAC.

A verifier that takes "the key" and the token's own ``alg`` MACs with the
public key's PEM text (CVE-2016-10555, CVE-2022-29217).
"""

from __future__ import annotations

from typing import Any

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

JWKS_PATHS = ("/.well-known/jwks.json", "/jwks.json")


async def _jwks(ctx: AuditContext) -> list[dict[str, Any]]:
    for path in JWKS_PATHS:
        exchange = await ctx.client.request("GET", path)
        body = exchange.json()
        if exchange.status == 200 and isinstance(body, dict):
            keys = body.get("keys")
            if isinstance(keys, list):
                return [k for k in keys if isinstance(k, dict)]
    return []


async def run(ctx: AuditContext) -> None:
    """MAC the audit's claims with each published public key's PEM."""
    token = await real_token(ctx)
    if jose.is_hmac(token.alg):
        raise Skipped(f"the token is {token.alg}: no public key to confuse")
    keys = await _jwks(ctx)
    if not keys:
        raise Skipped("no JWKS published")
    for jwk in keys[:2]:
        for pem in jose.public_key_pems(jwk)[:2]:
            header = {**token.header, "alg": "HS256"}
            if "kid" in jwk:
                header["kid"] = jwk["kid"]
            ok, evidence = await accepted(ctx, jose.sign_hmac(header, token.claims, pem))
            if ok:
                ctx.report(
                    "jwt-algorithm-confusion",
                    "HS256 token keyed with the published public key accepted",
                    Severity.CRITICAL,
                    evidence,
                    "Pin the algorithm per key; never let the token's alg choose how a "
                    "public key is used (RFC 8725 §3.1).",
                    ("V3.5.3",),
                    ("CWE-347", "CWE-327"),
                )
                return


CHECK = Check("jwt-confusion", "JWT RS/ES to HS key confusion", run)
