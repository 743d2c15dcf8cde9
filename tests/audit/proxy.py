"""A counting reverse proxy: what the audit really sent, when, and as whom."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

_HOP = {b"host", b"connection", b"content-length", b"transfer-encoding", b"keep-alive"}


@dataclass
class CountingProxy:
    """An ASGI app forwarding every request to ``upstream`` and noting its arrival."""

    upstream: str
    arrivals: list[float] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.arrivals.append(time.monotonic())
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        self.agents.append(dict(scope["headers"]).get(b"user-agent", b"").decode())
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["raw_path"].decode() + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                scope["method"], self.upstream + path, headers=headers, content=body
            )
        out = [
            (k.encode(), v.encode())
            for k, v in answer.headers.multi_items()
            if k.lower().encode() not in _HOP and k.lower() != "content-encoding"
        ]
        out.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": answer.content})

    def busiest(self, window: float) -> int:
        """The most request arrivals within any ``window`` seconds."""
        times = sorted(self.arrivals)
        best = 0
        for i, start in enumerate(times):
            best = max(best, sum(1 for t in times[i:] if t < start + window))
        return best


@asynccontextmanager
async def counting_proxy(upstream: str) -> AsyncIterator[tuple[str, CountingProxy]]:
    """Serve a :class:`CountingProxy` of ``upstream`` on 127.0.0.1; yields (url, proxy)."""
    proxy = CountingProxy(upstream)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        proxy, lifespan="off", log_level="warning", server_header=False, date_header=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", proxy
    finally:
        server.should_exit = True
        await task
        sock.close()
