"""Structured JSON logs on stdout (structlog), one object per line.

JSON rendering escapes control characters, so attacker-supplied text
(usernames, user agents) cannot split a record or forge another one. Records
of the standard ``logging`` module (the database driver, Alembic, asyncio,
``bastion.bootstrap``) are rendered the same way, tracebacks included, so
every line on stdout is one JSON object.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import Processor

_configured = False


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
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
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
