"""``storage/tables.py`` and the migrations describe one schema: a database
migrated to the head has exactly the tables, columns and indexes of the
metadata the stores query (checked by Alembic's autogenerate comparison)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bastion.storage.database import create_engine
from bastion.storage.migrate import upgrade
from bastion.storage.tables import metadata


async def test_migrated_sqlite_matches_the_table_definitions(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await upgrade(engine)

        def differences(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            found = await conn.run_sync(differences)
    finally:
        await engine.dispose()
    assert found == []
