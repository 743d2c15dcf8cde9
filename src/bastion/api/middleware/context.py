"""Request id, client address, proxy warnings and the access-log line: the
edge layer's first step and its last."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from bastion.api.middleware.proxywarning import FORWARDING_HEADERS, ProxyWarnings
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

#: Called the first time an untrusted peer sends forwarding headers.
OnProxyMisconfigured = Callable[[Scope, str, str], Awaitable[None]]
#: Metrics hook: route, method, status, seconds.
Observe = Callable[[str, str, int, float], None]

_WANTED = frozenset({b"x-request-id", b"x-forwarded-proto", *FORWARDING_HEADERS})


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


def _read_headers(scope: Scope) -> dict[bytes, str]:
    """The headers this step reads, in one pass; repeats joined by commas."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            text = bytes(value).decode("latin-1")
            found[key] = f"{found[key]},{text}" if key in found else text
    return found


@dataclass(slots=True)
class RequestInfo:
    """What the context step learnt about a request.

    Attributes:
        request_id: The client's tame ``X-Request-ID`` or a fresh random one.
        client_ip: The client (trusted-proxy rule applied, canonical text).
        id_header: The ``X-Request-ID`` response header.
    """

    request_id: str
    client_ip: str
    id_header: tuple[bytes, bytes]


class RequestContext:
    """Assigns the request id and client address; warns about untrusted proxies.

    Args:
        resolver: Applies the trusted-proxy rule to find the client.
        on_proxy_misconfigured: Records the ``proxy_misconfigured`` event.
    """

    def __init__(
        self,
        resolver: ClientResolver,
        on_proxy_misconfigured: OnProxyMisconfigured | None = None,
    ) -> None:
        self.resolver = resolver
        self.on_proxy_misconfigured = on_proxy_misconfigured
        self.proxy_warnings = ProxyWarnings()

    async def begin(self, scope: Scope, state: dict[str, Any]) -> RequestInfo:
        """Read the request's identity into ``state`` (and the scheme into ``scope``)."""
        wanted = _read_headers(scope)
        sent = wanted.get(b"x-request-id")
        request_id = sent if sent and REQUEST_ID_PATTERN.fullmatch(sent) else os.urandom(16).hex()
        peer = scope.get("client")
        client_ip = self.resolver.resolve(peer[0] if peer else None, wanted.get(b"x-forwarded-for"))
        state[STATE_REQUEST_ID] = request_id
        state[STATE_CLIENT_IP] = client_ip
        if peer:
            trusted = self.resolver.trusts(peer[0])
            if trusted and wanted.get(b"x-forwarded-proto") == "https":
                scope["scheme"] = "https"
            elif not trusted:
                await self._check_proxy(scope, client_ip, wanted)
        return RequestInfo(request_id, client_ip, (b"x-request-id", request_id.encode("ascii")))

    async def _check_proxy(self, scope: Scope, peer: str, wanted: dict[bytes, str]) -> None:
        header = next((name for name in FORWARDING_HEADERS if name in wanted), None)
        if header is None:
            return
        name = header.decode("latin-1")
        if self.proxy_warnings.warn(peer, name) and self.on_proxy_misconfigured is not None:
            await self.on_proxy_misconfigured(scope, peer, name)


def finish(
    scope: Scope,
    info: RequestInfo,
    status: int,
    elapsed: float,
    observe: Observe | None,
    route: str | None = None,
) -> None:
    """Metrics and the access-log line of one request (never raises)."""
    route = route or getattr(scope.get("route"), "path", None) or "unmatched"
    if observe is not None:
        observe(route, scope.get("method", ""), status, elapsed)
    with contextlib.suppress(Exception):
        log_request(
            method=scope.get("method"),
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            request_id=info.request_id,
            user_id=scope.get("state", {}).get(STATE_USER_ID),
            client_ip=info.client_ip,
        )
