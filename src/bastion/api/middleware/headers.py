"""Security headers on every response, errors and 429s included: a step of
the edge layer, applied to the response start."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bastion.security.headers import Headers, SecurityHeadersPolicy

_STRIP = frozenset({b"server", b"x-powered-by"})
_CACHE_CONTROL = b"cache-control"


class Surface(IntEnum):
    """Which header set a path gets."""

    API = 0
    DOCS = 1
    PAGE = 2


@dataclass(frozen=True, slots=True)
class _HeaderSet:
    """One policy's headers, with what they replace, computed once."""

    full: Headers
    #: The same without Cache-Control, for answers that chose their own.
    no_cache: Headers
    replaces: frozenset[bytes]

    @classmethod
    def of(cls, headers: Headers) -> _HeaderSet:
        # Cache-Control is the app's call when it makes one (the JWKS document
        # is public and cacheable); the policy's ``no-store`` is the default.
        return cls(
            full=headers,
            no_cache=[(k, v) for k, v in headers if k != _CACHE_CONTROL],
            replaces=frozenset(name for name, _ in headers) - {_CACHE_CONTROL} | _STRIP,
        )


class SecurityHeaders:
    """Adds the policy's headers to a response's headers.

    Args:
        policy: Which headers to add.
        docs_prefixes: Route paths that get the docs CSP instead of the API one.
        page_prefixes: Route paths that get the web pages' CSP.
    """

    def __init__(
        self,
        policy: SecurityHeadersPolicy,
        docs_prefixes: tuple[str, ...] = ("/docs", "/openapi.json"),
        page_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.docs_prefixes = docs_prefixes
        self.page_prefixes = page_prefixes
        self._sets = (
            _HeaderSet.of(policy.api_headers()),
            _HeaderSet.of(policy.docs_headers()),
            _HeaderSet.of(policy.page_headers()),
        )
        self._hsts = policy.hsts_headers()

    def surface_of(self, path: str) -> Surface:
        """Which header set ``path`` (a route path) gets."""
        if path.startswith(self.docs_prefixes):
            return Surface.DOCS
        if self.page_prefixes and path.startswith(self.page_prefixes):
            return Surface.PAGE
        return Surface.API

    def is_docs(self, path: str) -> bool:
        """Whether ``path`` (a route path) is one of the docs pages."""
        return self.surface_of(path) is Surface.DOCS

    def apply(self, headers: Headers, *, surface: Surface, https: bool) -> Headers:
        """``headers`` without software names, plus the policy's headers.

        Args:
            headers: The app's response headers.
            surface: Which header set applies (:meth:`surface_of`).
            https: Whether the request came over HTTPS (then HSTS, RFC 6797 §7.2).
        """
        chosen = self._sets[surface]
        kept = []
        own_cache_control = False
        for name, value in headers:
            if name not in chosen.replaces:
                kept.append((name, value))
                own_cache_control = own_cache_control or name == _CACHE_CONTROL
        kept += chosen.no_cache if own_cache_control else chosen.full
        if https:
            kept += self._hsts
        return kept
