"""Refuse request bodies over a size limit before anything parses them.

Headers are not trusted to announce a body: ``Transfer-Encoding: chunked``
with ``Content-Length: 0`` (or, under HTTP/2 and HTTP/3, neither header)
still delivers body bytes to the app. So every body of a method that can
carry one is counted as it is received, whatever the headers say, and a
message that frames itself twice is refused outright (RFC 9112 §6.3: a
``Content-Length`` beside ``Transfer-Encoding`` is a smuggling vector).
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from bastion.api.middleware.responses import TOKEN_NO_STORE, error_body, send_json

#: SPEC: bodies over 64 KiB get 413.
MAX_BODY_BYTES = 64 * 1024
#: Methods whose requests are not counted: RFC 9110 gives their bodies no
#: meaning and no route of ours (or a well-behaved host app's) reads them.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_TOO_LARGE = "request body too large"
_DOUBLE_FRAMING = "Content-Length together with Transfer-Encoding"
_BODIES = {
    (413, False): error_body(_TOO_LARGE, "body_too_large"),
    (400, False): error_body(_DOUBLE_FRAMING, "bad_framing"),
    # On the token endpoint: RFC 6749 §5.2 objects as well.
    (413, True): error_body(_TOO_LARGE, "body_too_large", "invalid_request"),
    (400, True): error_body(_DOUBLE_FRAMING, "bad_framing", "invalid_request"),
}
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


async def refuse(send: Send, status: int, *, oauth: bool = False) -> None:
    """The 400 or 413 of :func:`framing_problem`; the connection is closed after it.

    Args:
        send: Where to send it.
        status: 400 or 413.
        oauth: Whether the request is a token request (RFC 6749 error body).
    """
    extra = _CLOSE + TOKEN_NO_STORE if oauth else _CLOSE
    await send_json(send, status, _BODIES[status, oauth], extra)


def counting_receive(
    receive: Receive, send: Send, max_bytes: int, *, oauth: bool = False
) -> tuple[Receive, Send]:
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
                    await refuse(send, 413, oauth=oauth)
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


class BodyLimit:
    """400 for a doubly framed request, 413 for a body larger than ``max_bytes``.

    Args:
        max_bytes: The limit.
    """

    __slots__ = ("max_bytes",)

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.max_bytes = max_bytes

    def problem(self, scope: Scope) -> int | None:
        """The status refusing the request on its headers, if any."""
        return framing_problem(scope, self.max_bytes)

    def wrap(
        self, scope: Scope, receive: Receive, send: Send, *, oauth: bool = False
    ) -> tuple[Receive, Send]:
        """``receive``/``send`` counting the body (as given for bodyless methods)."""
        if scope["method"] in BODYLESS_METHODS:
            return receive, send
        return counting_receive(receive, send, self.max_bytes, oauth=oauth)
