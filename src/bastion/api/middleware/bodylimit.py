"""Refuse request bodies over a size limit before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.middleware.responses import send_json

#: SPEC: bodies over 64 KiB get 413.
MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = b'{"detail":"request body too large"}'


async def _send_413(send: Send) -> None:
    await send_json(send, 413, _TOO_LARGE, [(b"connection", b"close")])


class BodyLimitMiddleware:
    """413 for a declared or streamed body larger than ``max_bytes``.

    Args:
        app: The wrapped application.
        max_bytes: The limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await _send_413(send)
                    return
                has_body = declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            # Nothing to count (most GETs): no wrappers on the hot path. A
            # server never delivers body bytes without one of the two headers.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer here: frameworks turn exceptions raised while
                    # reading the body into a 400 of their own.
                    refused = True
                    if not started:
                        started = True
                        await _send_413(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
