"""Engine construction and the translation of driver failures into Bastion errors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bastion.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

#: A request that needs the database waits at most this long for it.
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 10_000


def create_engine(url: str) -> AsyncEngine:
    """An async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    SQLite gets WAL mode, a busy timeout and enforced foreign keys on every
    connection; PostgreSQL gets connect and statement timeouts, so an outage
    turns into a prompt 503 rather than a hung request.

    Both hide bound parameters from exception messages: an unexpected
    database error is logged with its traceback, and its parameters are
    emails, password hashes and token digests (issue 17 #14; OWASP Logging
    Cheat Sheet, "data to exclude").
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            pool_pre_ping=False,
            # Every block of ours ends its transaction (commit, or the
            # rollback of Connection.close), so the pool's own rollback on
            # return is a second one: a thread hop through aiosqlite each
            # time, 3 of the 34 hops of a login.
            pool_reset_on_return=None,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        # No ping before every checkout: that is one more round trip in every
        # transaction (a login has five). A connection broken by an outage
        # fails its statement, SQLAlchemy recognises the disconnect and
        # invalidates the whole pool, and that request answers 503: the
        # next ones reconnect (tests/api/test_faults.py).
        pool_pre_ping=False,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": STATEMENT_TIMEOUT_MS / 1000,
            "server_settings": {"statement_timeout": str(STATEMENT_TIMEOUT_MS)},
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def guarded(func: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn connection-level failures of a store method into :class:`Unavailable`."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except (OperationalError, InterfaceError, TimeoutError, OSError) as exc:
            raise Unavailable("the database is unavailable") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable("the database is unavailable") from exc
            raise

    return wrapper
