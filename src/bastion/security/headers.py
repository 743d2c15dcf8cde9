"""The security header policy (OWASP HTTP Headers Cheat Sheet).

Values are computed once; every response pays for a list concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass

#: API responses render nothing and frame nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: Swagger UI from our own assets: scripts and styles from self only. Swagger
#: UI 5 sets styles through the CSSOM, which CSP allows, so no 'unsafe-inline'
#: (tests/browser/test_docs.py sees no violation).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: The web pages (SPEC, "Web pages"): scripts and styles only from our own
#: files, so no inline script or style runs (OWASP CSP Cheat Sheet); forms post
#: only here; no framing; no <base> to redirect relative URLs.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"

Headers = list[tuple[bytes, bytes]]


def _encode(pairs: list[tuple[str, str]]) -> Headers:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


@dataclass(frozen=True, slots=True)
class SecurityHeadersPolicy:
    """Which headers go on which response.

    Attributes:
        x_xss_protection: ``"0"`` (OWASP's advice: the XSS auditor is gone
            and its blocking mode created leaks) or the blog post's ``"1; mode=block"``.
    """

    x_xss_protection: str = "0"

    def common(self) -> list[tuple[str, str]]:
        """Headers every response carries."""
        return [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("X-XSS-Protection", self.x_xss_protection),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ]

    def api_headers(self) -> Headers:
        """For API responses: strict CSP, never cached (tokens, user data)."""
        return _encode(
            [*self.common(), ("Content-Security-Policy", API_CSP), ("Cache-Control", "no-store")]
        )

    def docs_headers(self) -> Headers:
        """For the interactive docs and their assets."""
        return _encode([*self.common(), ("Content-Security-Policy", DOCS_CSP)])

    def page_headers(self) -> Headers:
        """For the web pages and their assets: the page CSP, never cached."""
        return _encode(
            [*self.common(), ("Content-Security-Policy", PAGE_CSP), ("Cache-Control", "no-store")]
        )

    def hsts_headers(self) -> Headers:
        """Added when the request arrived over HTTPS (RFC 6797 §7.2: never over HTTP)."""
        return _encode([("Strict-Transport-Security", HSTS)])
