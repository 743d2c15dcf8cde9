"""Request id, client address, one access-log line per request, and the
catch-all that turns an unexpected error into a generic JSON 500."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.middleware.proxywarning import FORWARDING_HEADERS, ProxyWarnings
from bastion.api.middleware.responses import send_json
from bastion.logs import log_request
from bastion.security.clientip import ClientResolver

#: A client-sent request id is kept only if it is this tame; anything else
#: (newlines, quotes, megabytes) is replaced, so it cannot forge log lines.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._\-]{1,64}", re.ASCII)
#: Keys of Bastion's entries in ``request.state``. Private names: a host
#: app's own ``request.state.user_id`` or ``.principal`` must neither be read
#: by Bastion as its verdict nor be overwritten by it.
STATE_REQUEST_ID = "_bastion_request_id"
STATE_CLIENT_IP = "_bastion_client_ip"
STATE_USER_ID = "_bastion_user_id"

error_log = structlog.get_logger("bastion.error")


def state_of(scope: Scope) -> dict[str, Any]:
    """The per-request state dict that Starlette exposes as ``request.state``."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path`` prefix.

    Under ``--root-path /svc`` or a Starlette ``Mount("/svc", ...)`` the
    scope's ``path`` is ``/svc/auth/token``; rules that name a route must
    compare what routing compares, or a prefix switches them off.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


_WANTED = frozenset({b"x-request-id", b"x-forwarded-proto", *FORWARDING_HEADERS})
#: Called the first time an untrusted peer sends forwarding headers.
OnProxyMisconfigured = Callable[[Scope, str, str], Awaitable[None]]


def _read_headers(scope: Scope) -> dict[bytes, str]:
    """The headers this middleware reads, in one pass; repeats joined by commas."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            text = bytes(value).decode("latin-1")
            found[key] = f"{found[key]},{text}" if key in found else text
    return found


class RequestContextMiddleware:
    """Assigns the request id and client address; logs the request; catches crashes.

    Args:
        app: The wrapped application.
        resolver: Applies the trusted-proxy rule to find the client.
    """

    def __init__(
        self,
        app: ASGIApp,
        resolver: ClientResolver,
        observe: Callable[[str, str, int, float], None] | None = None,
        on_proxy_misconfigured: OnProxyMisconfigured | None = None,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.observe = observe
        self.on_proxy_misconfigured = on_proxy_misconfigured
        self.proxy_warnings = ProxyWarnings()

    async def _check_proxy(self, scope: Scope, peer: str, wanted: dict[bytes, str]) -> None:
        header = next((name for name in FORWARDING_HEADERS if name in wanted), None)
        if header is None:
            return
        name = header.decode("latin-1")
        if self.proxy_warnings.warn(peer, name) and self.on_proxy_misconfigured is not None:
            await self.on_proxy_misconfigured(scope, peer, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        wanted = _read_headers(scope)
        sent = wanted.get(b"x-request-id")
        request_id = sent if sent and REQUEST_ID_PATTERN.fullmatch(sent) else os.urandom(16).hex()
        peer = scope.get("client")
        client_ip = self.resolver.resolve(peer[0] if peer else None, wanted.get(b"x-forwarded-for"))
        if peer and wanted.get(b"x-forwarded-proto") == "https" and self.resolver.trusts(peer[0]):
            scope["scheme"] = "https"
        state = state_of(scope)
        state[STATE_REQUEST_ID] = request_id
        state[STATE_CLIENT_IP] = client_ip
        if peer and not self.resolver.trusts(peer[0]):
            await self._check_proxy(scope, client_ip, wanted)
        status = 500
        started_response = False
        id_header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A broken log sink must not also cost the client its JSON 500.
            with contextlib.suppress(Exception):
                error_log.exception(
                    "unhandled_error", request_id=request_id, path=scope.get("path", "")[:200]
                )
            if started_response:
                raise
            body = b'{"detail":"internal server error","request_id":"' + request_id.encode() + b'"}'
            await send_json(send_with_id, 500, body)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            if self.observe is not None:
                self.observe(route, scope.get("method", ""), status, elapsed)
            with contextlib.suppress(Exception):
                log_request(
                    method=scope.get("method"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    request_id=request_id,
                    user_id=state.get(STATE_USER_ID),
                    client_ip=client_ip,
                )
