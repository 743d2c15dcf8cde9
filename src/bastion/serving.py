"""How ``bastion serve`` runs uvicorn: the production stack, with ``TCP_NODELAY``.

SPEC (round 2): uvloop and httptools, the stack ``uvicorn[standard]`` users
run, with ``TCP_NODELAY`` on every connection and every worker count. Where
either cannot be imported (a platform without wheels) the server falls back
to asyncio and h11, still with ``TCP_NODELAY``, and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("bastion")

H11_PROTOCOL = "bastion.serving:NoDelayH11Protocol"
HTTPTOOLS_PROTOCOL = "bastion.serving:NoDelayHttpToolsProtocol"


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """``TCP_NODELAY`` on the transport's socket, if it is a TCP one.

    With ``--workers`` above 1, uvicorn 0.54 creates the listening socket with
    ``proto=0`` and asyncio (and uvloop) then skip ``TCP_NODELAY`` on accepted
    connections: Nagle's algorithm meets delayed ACKs and every keep-alive
    response waits ~40 ms (measured in round 1: 729 req/s with two workers
    against 2,861 with one). Setting it per connection fixes every worker count.
    """
    sock = cast("socket.socket | None", transport.get_extra_info("socket"))
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``TCP_NODELAY`` set on every connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with ``TCP_NODELAY`` on every connection."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            set_nodelay(transport)
            super().connection_made(transport)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerStack:
    """The ``loop`` and ``http`` arguments for ``uvicorn.run``.

    Attributes:
        loop: ``"uvloop"`` or ``"asyncio"``.
        http: The import string of the HTTP protocol class.
    """

    loop: str
    http: str

    @property
    def production(self) -> bool:
        """Whether this is the uvloop + httptools stack."""
        return self.loop == "uvloop" and self.http == HTTPTOOLS_PROTOCOL


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def server_stack(*, uvloop: bool | None = None, httptools: bool | None = None) -> ServerStack:
    """The best stack this interpreter can run (the arguments override detection)."""
    has_uvloop = _importable("uvloop") if uvloop is None else uvloop
    has_httptools = _importable("httptools") if httptools is None else httptools
    stack = ServerStack(
        loop="uvloop" if has_uvloop else "asyncio",
        http=HTTPTOOLS_PROTOCOL if has_httptools else H11_PROTOCOL,
    )
    if not stack.production:
        log.warning(
            "uvloop or httptools cannot be imported: serving on %s + %s, which is slower",
            stack.loop,
            "httptools" if has_httptools else "h11",
        )
    return stack


def freeze_heap_after_startup(app: Any) -> None:
    """Move everything alive once ``app`` has started out of the collector's sight.

    The started service holds ~170,000 tracked objects (modules, FastAPI's
    models, SQLAlchemy's metadata) that live as long as the process. Each
    full collection walked all of them: 91 ms measured, which was the p99 of
    ``/health`` during a login flood (issue 15). ``gc.freeze()`` after
    startup leaves the collector only what requests allocate.

    Args:
        app: A Starlette or FastAPI app; its lifespan is wrapped.
    """
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Any]:
        async with original(inner) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
