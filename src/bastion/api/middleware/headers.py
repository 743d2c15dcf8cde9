"""Security headers on every response, errors and 429s included: a step of
the edge layer, applied to the response start."""

from __future__ import annotations

from bastion.security.headers import Headers, SecurityHeadersPolicy

_STRIP = frozenset({b"server", b"x-powered-by"})
_CACHE_CONTROL = b"cache-control"


class SecurityHeaders:
    """Adds the policy's headers to a response's headers.

    Args:
        policy: Which headers to add.
        docs_prefixes: Route paths that get the docs CSP instead of the API one.
    """

    def __init__(
        self,
        policy: SecurityHeadersPolicy,
        docs_prefixes: tuple[str, ...] = ("/docs", "/openapi.json"),
    ) -> None:
        self.docs_prefixes = docs_prefixes
        self._api = policy.api_headers()
        self._docs = policy.docs_headers()
        self._hsts = policy.hsts_headers()
        # Cache-Control is the app's call when it makes one (the JWKS document
        # is public and cacheable); the policy's ``no-store`` is the default.
        self._api_names = frozenset(name for name, _ in self._api) - {_CACHE_CONTROL} | _STRIP
        self._docs_names = frozenset(name for name, _ in self._docs) - {_CACHE_CONTROL} | _STRIP
        self._api_no_cache = [(k, v) for k, v in self._api if k != _CACHE_CONTROL]
        self._docs_no_cache = [(k, v) for k, v in self._docs if k != _CACHE_CONTROL]

    def is_docs(self, path: str) -> bool:
        """Whether ``path`` (a route path) is one of the docs pages."""
        return path.startswith(self.docs_prefixes)

    def apply(self, headers: Headers, *, docs: bool, https: bool) -> Headers:
        """``headers`` without software names, plus the policy's headers.

        Args:
            headers: The app's response headers.
            docs: Whether the docs policy applies (:meth:`is_docs`).
            https: Whether the request came over HTTPS (then HSTS, RFC 6797 §7.2).
        """
        names = self._docs_names if docs else self._api_names
        kept = []
        own_cache_control = False
        for name, value in headers:
            if name not in names:
                kept.append((name, value))
                own_cache_control = own_cache_control or name == _CACHE_CONTROL
        if own_cache_control:
            kept += self._docs_no_cache if docs else self._api_no_cache
        else:
            kept += self._docs if docs else self._api
        if https:
            kept += self._hsts
        return kept
