"""Answering from pure-ASGI middleware, before or instead of the app."""

from __future__ import annotations

from starlette.types import Send

Headers = list[tuple[bytes, bytes]]


async def send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    """Send a complete JSON response: ``body`` with ``status`` and extra ``headers``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
