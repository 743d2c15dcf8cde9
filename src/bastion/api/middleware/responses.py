"""Answering from pure-ASGI middleware, before or instead of the app."""

from __future__ import annotations

import json

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


def error_body(detail: str, code: str, oauth_error: str | None = None) -> bytes:
    """A JSON error body: ``{"detail", "code"}``, and on the token endpoint
    also RFC 6749 §5.2's ``error`` and ``error_description``."""
    body: dict[str, str] = {"detail": detail, "code": code}
    if oauth_error is not None:
        body = {"error": oauth_error, "error_description": detail, **body}
    return json.dumps(body, separators=(",", ":")).encode()


#: Headers of every token-endpoint answer (RFC 6749 §5.1).
TOKEN_NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
