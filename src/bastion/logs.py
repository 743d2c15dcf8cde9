"""Structured JSON logs on stdout (structlog), one object per line.

JSON rendering escapes control characters, so attacker-supplied text
(usernames, user agents) cannot split a record or forge another one. Records
of the standard ``logging`` module (the database driver, Alembic, asyncio,
``bastion.bootstrap``) are rendered the same way, tracebacks included, so
every line on stdout is one JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import structlog
from structlog.typing import EventDict, Processor

_configured = False


class _UtcTimestamp:
    """Adds ``timestamp`` (ISO 8601, UTC, milliseconds) to each record.

    structlog's ``TimeStamper(fmt="iso")`` builds a datetime per record; on
    the per-request access line that cost shows, so the whole-second prefix is
    formatted once per second and reused.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: object, _name: str, event: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        return event


_timestamp = _UtcTimestamp()


#: JSON encodings of the few distinct strings an access line repeats (route
#: templates, methods, client addresses), bounded so hostile input cannot grow it.
_ENCODED: dict[str | None, str] = {}
_ENCODED_MAX = 4096


def _encoded(value: str | None) -> str:
    text = _ENCODED.get(value)
    if text is None:
        text = json.dumps(value)
        if len(_ENCODED) < _ENCODED_MAX:
            _ENCODED[value] = text
    return text


def log_request(
    *,
    method: str | None,
    route: str,
    status: int,
    duration_ms: float,
    request_id: str,
    user_id: int | None,
    client_ip: str,
) -> None:
    """Write the access line of one request: the same JSON shape as a
    structlog record, without the processor chain.

    Every request pays for this line, so it is assembled from cached JSON
    encodings of its strings (``json.dumps`` escapes control characters, so a
    hostile value cannot split the line); the numbers are formatted by Python.
    """
    record: dict[str, object] = {}
    _timestamp(None, "info", record)
    uid = "null" if user_id is None else str(int(user_id))
    line = (
        f'{{"method": {_encoded(method)}, "route": {_encoded(route)}, "status": {int(status)}, '
        f'"duration_ms": {float(duration_ms)!r}, "request_id": {_encoded_once(request_id)}, '
        f'"user_id": {uid}, "client_ip": {_encoded(client_ip)}, "event": "request", '
        f'"level": "info", "timestamp": "{record["timestamp"]}"}}\n'
    )
    stream = sys.stdout
    stream.write(line)
    stream.flush()


def _encoded_once(value: str) -> str:
    # Request ids are unique: worth no cache. Well-formed ones (the middleware
    # replaces any other) need no escaping.
    if value.isascii() and value.replace("-", "").replace(".", "").replace("_", "").isalnum():
        return f'"{value}"'
    return json.dumps(value)


class _StdoutHandler(logging.Handler):
    """Writes each formatted record to ``sys.stdout`` as it is at that moment.

    A handler holding the stream of configuration time would keep writing to
    a replaced (and maybe closed) stream: the same reason the structlog
    logger below is given no file.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: int = logging.INFO) -> None:
    """Send structlog and standard logging to stdout as one JSON object per line.

    Configures the process once; later calls do nothing.
    """
    global _configured
    if _configured:
        return
    _configured = True
    shared: list[Processor] = [
        structlog.processors.add_log_level,
        _UtcTimestamp(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # No file: a PrintLogger without one looks up sys.stdout at each
        # write, so a stream replaced after start-up (by a supervisor, or by
        # pytest's capture) still gets the lines.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
