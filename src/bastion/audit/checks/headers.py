"""Security headers, judged by what an API (not a web page) needs.

OWASP REST Security and HTTP Headers cheat sheets: ``nosniff``, framing
refused, a locked-down CSP, ``X-XSS-Protection`` off (the old auditor
opened XS-leaks), HSTS over TLS, ``no-store`` on token responses (RFC 6749
§5.1), and no banner naming the server software.
"""

from __future__ import annotations

import re

from bastion.audit.checks.base import Check, Skipped
from bastion.audit.client import Exchange
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity

_BANNER = re.compile(r"[A-Za-z]", re.ASCII)


def _missing(ctx: AuditContext, sample: Exchange) -> None:
    h = sample.header
    evidence = ctx.show(
        sample,
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "referrer-policy",
        "strict-transport-security",
    )
    if (h("x-content-type-options") or "").lower() != "nosniff":
        ctx.report(
            "header-nosniff",
            "X-Content-Type-Options: nosniff missing",
            Severity.LOW,
            evidence,
            "Send X-Content-Type-Options: nosniff on every response.",
            ("V14.4.4",),
            ("CWE-693",),
        )
    csp = h("content-security-policy") or ""
    if not (h("x-frame-options") or "frame-ancestors" in csp):
        ctx.report(
            "header-framing",
            "Framing not refused (no X-Frame-Options or frame-ancestors)",
            Severity.LOW,
            evidence,
            "Send X-Frame-Options: DENY or CSP frame-ancestors 'none'.",
            ("V14.4.7",),
            ("CWE-1021",),
        )
    if not csp:
        ctx.report(
            "header-csp",
            "No Content-Security-Policy",
            Severity.LOW,
            evidence,
            "For API responses: Content-Security-Policy: default-src 'none'; "
            "frame-ancestors 'none'.",
            ("V14.4.3",),
            ("CWE-693",),
        )
    xss = h("x-xss-protection")
    if xss is not None and xss.strip() != "0":
        ctx.report(
            "header-x-xss-protection",
            f"Outdated X-XSS-Protection: {xss}",
            Severity.LOW,
            evidence,
            "Send X-XSS-Protection: 0 or omit it; rely on CSP (OWASP HTTP Headers "
            "cheat sheet: the XSS auditor it enables introduced XS-leaks).",
            ("V14.4.3",),
            ("CWE-693",),
        )
    if h("referrer-policy") is None:
        ctx.report(
            "header-referrer-policy",
            "No Referrer-Policy",
            Severity.INFO,
            evidence,
            "Send Referrer-Policy: no-referrer.",
            ("V14.4.6",),
            ("CWE-200",),
        )
    if ctx.client.target.https and h("strict-transport-security") is None:
        ctx.report(
            "header-hsts",
            "No Strict-Transport-Security over HTTPS",
            Severity.MEDIUM,
            evidence,
            "Send Strict-Transport-Security: max-age=31536000.",
            ("V14.4.5",),
            ("CWE-319",),
        )
    server = h("server")
    if server and _BANNER.search(server):
        ctx.report(
            "header-server-banner",
            f"Server header names the software: {server}",
            Severity.INFO,
            evidence,
            "Drop the Server header (uvicorn: --no-server-header).",
            ("V14.3.3",),
            ("CWE-200",),
        )


async def run(ctx: AuditContext) -> None:
    """Judge an error response of a protected route and the token response."""
    if ctx.routes.me is not None:
        sample = await ctx.call_me(None)
    elif ctx.probes:
        sample = ctx.probes[0]
    else:
        raise Skipped("no response to judge")
    _missing(ctx, sample)
    if ctx.session is not None:
        response = ctx.session.response
        if "no-store" not in (response.header("cache-control") or "").lower():
            ctx.report(
                "header-token-cache",
                "Token response may be cached (no Cache-Control: no-store)",
                Severity.MEDIUM,
                ctx.show(response, "pragma"),
                "Send Cache-Control: no-store with every response carrying tokens (RFC 6749 §5.1).",
                ("V8.2.1",),
                ("CWE-525",),
            )


CHECK = Check("headers", "security headers", run)
