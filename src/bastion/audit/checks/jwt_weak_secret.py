"""An HMAC signing secret found in a list of weak and example secrets.

The guessing is offline: the token's MAC is recomputed locally for each
candidate, so no request is sent per guess; one forged token for the same
user then confirms it (a fresh ``iat``/``exp``/``jti``, the same ``sub``).
"""

from __future__ import annotations

import hmac
import secrets
import time

from bastion.audit import jose
from bastion.audit.checks._jwt import accepted, real_token
from bastion.audit.checks.base import Check, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity
from bastion.audit.secrets_list import candidate_secrets


def crack(token: jose.Jwt) -> tuple[bytes, str] | None:
    """The secret and its source when ``token`` is MACed with a listed secret."""
    for key, source in candidate_secrets():
        mac = jose.hmac_signature(token.alg, key, token.signing_input)
        if hmac.compare_digest(mac, token.signature):
            return key, source
    return None


async def run(ctx: AuditContext) -> None:
    """Crack the audit's own token offline, then prove it with one forgery."""
    token = await real_token(ctx)
    if not jose.is_hmac(token.alg):
        raise Skipped(f"the token is signed with {token.alg or 'no algorithm'}, not HMAC")
    found = crack(token)
    if found is None:
        return
    key, source = found
    ctx.known_key = key
    now = int(time.time())
    claims = {**token.claims, "iat": now, "exp": now + 300, "jti": secrets.token_hex(8)}
    if "exp" not in token.claims:
        del claims["exp"]
    ok, evidence = await accepted(ctx, jose.sign_hmac(token.header, claims, key))
    confirmed = "a token forged with it was accepted" if ok else "the forged token was refused"
    ctx.report(
        "jwt-weak-secret",
        f"JWT signing secret is a known weak or example value: {key.decode(errors='replace')!r}",
        Severity.CRITICAL,
        f"{token.alg} secret {key.decode(errors='replace')!r} ({source}) found offline; "
        f"{confirmed}.\n\n{evidence}",
        "Generate the secret (at least 256 random bits, e.g. secrets.token_urlsafe(32)), "
        "keep it out of source code, and rotate it now: every token ever signed with it "
        "can be forged (RFC 7518 §3.2, RFC 8725 §3.5).",
        ("V2.10.4", "V6.4.1"),
        ("CWE-798", "CWE-1391"),
    )


CHECK = Check("jwt-weak-secret", "JWT secret against weak and example secrets", run)
