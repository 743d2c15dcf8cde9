"""Security headers on every response, errors and 429s included."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.middleware.context import route_path
from bastion.security.headers import SecurityHeadersPolicy

_STRIP = frozenset({b"server", b"x-powered-by"})
_CACHE_CONTROL = b"cache-control"


class SecurityHeadersMiddleware:
    """Adds the policy's headers to each response.

    Args:
        app: The wrapped application.
        policy: Which headers to add.
        docs_prefixes: Paths that get the docs CSP instead of the API one.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: SecurityHeadersPolicy,
        docs_prefixes: tuple[str, ...] = ("/docs", "/openapi.json"),
    ) -> None:
        self.app = app
        self.docs_prefixes = docs_prefixes
        self._api = policy.api_headers()
        self._docs = policy.docs_headers()
        self._hsts = policy.hsts_headers()
        # Names each policy replaces, computed once rather than per request.
        # Cache-Control is the app's call when it makes one (the JWKS document
        # is public and cacheable); the policy's ``no-store`` is the default.
        self._api_names = frozenset(name for name, _ in self._api) - {_CACHE_CONTROL} | _STRIP
        self._docs_names = frozenset(name for name, _ in self._docs) - {_CACHE_CONTROL} | _STRIP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if route_path(scope).startswith(self.docs_prefixes):
            extra, names = self._docs, self._docs_names
        else:
            extra, names = self._api, self._api_names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                if any(k == _CACHE_CONTROL for k, _ in headers):
                    headers += [(k, v) for k, v in extra if k != _CACHE_CONTROL]
                else:
                    headers += extra
                # Read at response time: an inner middleware may have learnt
                # from a trusted proxy that the request came over HTTPS.
                if scope.get("scheme") == "https":
                    headers += self._hsts
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
