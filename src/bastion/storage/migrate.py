"""Alembic migrations, run programmatically on an async engine."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

#: Suffix of the lock file kept beside an SQLite database while it is migrated.
LOCK_SUFFIX = ".migrate-lock"


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", "bastion.storage:migrations")
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision``."""

    def run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def upgrade_sqlite(engine: AsyncEngine) -> None:
    """Migrate an SQLite file to the newest revision, one process at a time.

    SQLite is migrated on start, and ``bastion serve --workers N`` (or any
    pre-forking server in library mode) starts N processes on one file at
    once. Alembic reads the version, then creates tables: two processes that
    both read "no version" both create, and one fails with "table ... already
    exists" (issue 17 #12). An exclusive ``flock`` on a file beside the
    database serialises them; whoever comes second finds the schema current
    and does nothing. The lock is released when the descriptor is closed,
    also when the process dies.
    """
    database = engine.url.database
    if not database or database == ":memory:":
        await upgrade(engine)
        return
    lock_path = Path(database).with_name(Path(database).name + LOCK_SUFFIX)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # flock blocks; waiting in a thread keeps the event loop free.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        await upgrade(engine)
    finally:
        os.close(fd)


async def is_current(engine: AsyncEngine) -> bool:
    """Whether the database behind ``engine`` is at the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    def current(connection: Any) -> str | None:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision

    async with engine.connect() as conn:
        return await conn.run_sync(current) == head
