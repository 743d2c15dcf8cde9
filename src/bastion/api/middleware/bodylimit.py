"""Refuse request bodies over a size limit before anything parses them.

Headers are not trusted to announce a body: ``Transfer-Encoding: chunked``
with ``Content-Length: 0`` (or, under HTTP/2 and HTTP/3, neither header)
still delivers body bytes to the app. So every body of a method that can
carry one is counted as it is received, whatever the headers say, and a
message that frames itself twice is refused outright (RFC 9112 §6.3: a
``Content-Length`` beside ``Transfer-Encoding`` is a smuggling vector).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.middleware.responses import send_json

#: SPEC: bodies over 64 KiB get 413.
MAX_BODY_BYTES = 64 * 1024
#: Methods whose requests are not counted: RFC 9110 gives their bodies no
#: meaning and no route of ours (or a well-behaved host app's) reads them.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_TOO_LARGE = b'{"detail":"request body too large"}'
_DOUBLE_FRAMING = b'{"detail":"Content-Length together with Transfer-Encoding"}'
_CLOSE = [(b"connection", b"close")]


def framing_problem(scope: Scope, max_bytes: int) -> int | None:
    """The status that refuses the request on its headers alone, if any.

    ``400`` for ``Content-Length`` together with ``Transfer-Encoding``
    (RFC 9112 §6.3); ``413`` for a declared length over ``max_bytes`` or one
    that is not a number.
    """
    length: bytes | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    if length is None:
        return None
    if chunked:
        return 400
    try:
        declared = int(length)
    except ValueError:
        return 413
    return 413 if declared > max_bytes else None


async def refuse(send: Send, status: int) -> None:
    """The 400 or 413 of :func:`framing_problem`; the connection is closed after it."""
    await send_json(send, status, _TOO_LARGE if status == 413 else _DOUBLE_FRAMING, _CLOSE)


def counting_receive(receive: Receive, send: Send, max_bytes: int) -> tuple[Receive, Send]:
    """``receive`` and ``send`` wrapped so a body over ``max_bytes`` gets a 413.

    The 413 is sent from inside ``receive`` (frameworks turn exceptions raised
    while reading a body into a 400 of their own); the app then sees a
    disconnect and whatever it tries to send afterwards is dropped.
    """
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
            if received > max_bytes:
                refused = True
                if not started:
                    started = True
                    await refuse(send, 413)
                return {"type": "http.disconnect"}
        return message

    async def tracking_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    return limited_receive, tracking_send


class BodyLimitMiddleware:
    """400 for a doubly framed request, 413 for a body larger than ``max_bytes``.

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
        problem = framing_problem(scope, self.max_bytes)
        if problem is not None:
            await refuse(send, problem)
            return
        if scope["method"] in BODYLESS_METHODS:
            await self.app(scope, receive, send)
            return
        await self.app(scope, *counting_receive(receive, send, self.max_bytes))
