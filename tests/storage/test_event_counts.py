"""The event counts behind the admin charts: right numbers, and an index
range scan (not a table scan) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import create_engine
from bastion.storage.migrate import upgrade
from bastion.storage.protocols import EventCount, EventCountQuery, EventQuery, SecurityEvent
from bastion.storage.sql_events import SqlEventStore
from tests.conftest import fresh_database
from tests.servers import PostgresServer

T0 = 1_800_000_000.0


@pytest.fixture
async def engine(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncEngine]:
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        url = await fresh_database(pg)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    made = create_engine(url)
    if backend == "sqlite":
        await upgrade(made)
    yield made
    await made.dispose()


async def test_counts_per_type_and_bucket(engine: AsyncEngine) -> None:
    store = SqlEventStore(engine)
    await store.add_many(
        [
            SecurityEvent(at=T0 + 10, type="authn_login_fail", outcome="failure", ip="10.0.0.1"),
            SecurityEvent(
                at=T0 + 3599.9, type="authn_login_fail", outcome="failure", ip="10.0.0.2"
            ),
            SecurityEvent(at=T0 + 3600, type="authn_login_fail", outcome="failure", ip="10.0.0.1"),
            SecurityEvent(at=T0 + 7300, type="authn_login_success", outcome="success", user_id=4),
            SecurityEvent(at=T0 - 1, type="authn_login_fail", outcome="failure"),
            SecurityEvent(at=T0 + 3 * 3600, type="authn_login_fail", outcome="failure"),
        ]
    )
    query = EventCountQuery(since=T0, width=3600, buckets=3)
    found = sorted(await store.count(query), key=lambda c: (c.bucket, c.type))
    assert found == [
        EventCount("authn_login_fail", 0, 2),
        EventCount("authn_login_fail", 1, 1),
        EventCount("authn_login_success", 2, 1),
    ]
    by_ip = await store.count(
        EventCountQuery(since=T0, width=3600, buckets=3, types=("authn_login_fail",), ip="10.0.0.1")
    )
    assert sorted(c.bucket for c in by_ip) == [0, 1]
    by_user = await store.count(EventCountQuery(since=T0, width=3600, buckets=3, user_id=4))
    assert by_user == [EventCount("authn_login_success", 2, 1)]
    listed = await store.query(EventQuery(ip="10.0.0.2"))
    assert [event.at for event in listed] == [T0 + 3599.9]


async def test_the_chart_query_uses_the_type_and_time_index(
    engine: AsyncEngine, backend: str
) -> None:
    store = SqlEventStore(engine)
    # Enough rows that PostgreSQL's planner prefers the index.
    await store.add_many(
        [SecurityEvent(at=T0 + n, type=f"type_{n % 20}", outcome="success") for n in range(20_000)]
    )
    query = EventCountQuery(since=T0 + 100, width=60, buckets=24, types=("type_3", "type_4"))
    statement = (
        "SELECT type, count(*) FROM events WHERE type IN ('type_3', 'type_4') "  # noqa: S608
        f"AND at >= {query.since} AND at < {query.until} GROUP BY type"
    )
    async with engine.connect() as conn:
        if backend == "sqlite":
            rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {statement}"))).all()
            plan = " ".join(str(row[-1]) for row in rows)
            assert "USING COVERING INDEX ix_events_type_at" in plan, plan
        else:
            await conn.execute(text("ANALYZE events"))
            rows = (await conn.execute(text(f"EXPLAIN {statement}"))).all()
            plan = " ".join(str(row[0]) for row in rows)
            assert "ix_events_type_at" in plan, plan
            assert "Seq Scan" not in plan, plan
    # The store's own statement answers the same.
    counted = sum(c.count for c in await store.count(query))
    assert counted == 24 * 60 // 20 * 2
