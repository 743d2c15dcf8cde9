"""Security headers on every response, errors and 429s included."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.security.headers import SecurityHeadersPolicy

_STRIP = frozenset({b"server", b"x-powered-by"})


class SecurityHeadersMiddleware:
    """Adds the policy's headers to each response.

    Args:
        app: The wrapped application.
        policy: Which headers to add.
        docs_prefixes: Paths that get the docs CSP instead of the API one.
        page_prefixes: Paths that get the web pages' CSP.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: SecurityHeadersPolicy,
        docs_prefixes: tuple[str, ...] = ("/docs", "/openapi.json"),
        page_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.docs_prefixes = docs_prefixes
        self.page_prefixes = page_prefixes
        self._page = policy.page_headers()
        self._page_names = frozenset(name for name, _ in self._page) | _STRIP
        self._api = policy.api_headers()
        self._docs = policy.docs_headers()
        self._hsts = policy.hsts_headers()
        # Names each policy replaces, computed once rather than per request.
        self._api_names = frozenset(name for name, _ in self._api) | _STRIP
        self._docs_names = frozenset(name for name, _ in self._docs) | _STRIP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(self.docs_prefixes):
            extra, names = self._docs, self._docs_names
        elif self.page_prefixes and scope["path"].startswith(self.page_prefixes):
            extra, names = self._page, self._page_names
        else:
            extra, names = self._api, self._api_names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                headers += extra
                # Read at response time: an inner middleware may have learnt
                # from a trusted proxy that the request came over HTTPS.
                if scope.get("scheme") == "https":
                    headers += self._hsts
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
