"""Security events in SQLAlchemy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.protocols import EventCount, EventCountQuery, EventQuery, SecurityEvent
from bastion.storage.tables import events


def _row(event: SecurityEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "type": event.type,
        "outcome": event.outcome,
        "user_id": event.user_id,
        "username": event.username,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "detail": json.dumps(event.detail, separators=(",", ":"), default=str),
    }


class SqlEventStore:
    """:class:`bastion.storage.protocols.EventStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def add_many(self, batch: Sequence[SecurityEvent]) -> None:
        if not batch:
            return
        async with self._engine.begin() as conn:
            await conn.execute(insert(events), [_row(event) for event in batch])

    @guarded
    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        statement = select(events).order_by(events.c.id.desc()).limit(query.limit)
        if query.type is not None:
            statement = statement.where(events.c.type == query.type)
        if query.user_id is not None:
            statement = statement.where(events.c.user_id == query.user_id)
        if query.ip is not None:
            statement = statement.where(events.c.ip == query.ip)
        if query.since is not None:
            statement = statement.where(events.c.at >= query.since)
        if query.until is not None:
            statement = statement.where(events.c.at <= query.until)
        if query.before_id is not None:
            statement = statement.where(events.c.id < query.before_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            SecurityEvent(
                id=int(row.id),
                at=float(row.at),
                type=row.type,
                outcome=row.outcome,
                user_id=row.user_id,
                username=row.username,
                ip=row.ip,
                user_agent=row.user_agent,
                request_id=row.request_id,
                detail=json.loads(row.detail),
            )
            for row in rows
        ]

    def _bucket(self, query: EventCountQuery) -> ColumnElement[int]:
        # Rows are at or after ``since``, so the offset is never negative and
        # truncation is the floor. SQLite's CAST truncates; PostgreSQL's
        # rounds, hence floor() there (SQLite has floor() only when built
        # with its math functions).
        offset = (events.c.at - query.since) / query.width
        if self._engine.dialect.name == "sqlite":
            return cast(offset, Integer)
        return cast(func.floor(offset), Integer)

    @guarded
    async def count(self, query: EventCountQuery) -> list[EventCount]:
        # One GROUP BY over the (type, at) index: the range condition on
        # ``at`` under each type is an index range scan, never a table scan
        # (tests/storage/test_event_counts.py checks the plans).
        bucket = self._bucket(query).label("bucket")
        statement = (
            select(events.c.type, bucket, func.count().label("n"))
            .where(events.c.at >= query.since, events.c.at < query.until)
            .group_by(events.c.type, bucket)
        )
        if query.types:
            statement = statement.where(events.c.type.in_(query.types))
        if query.user_id is not None:
            statement = statement.where(events.c.user_id == query.user_id)
        if query.ip is not None:
            statement = statement.where(events.c.ip == query.ip)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            EventCount(str(row.type), int(row.bucket), int(row.n))
            for row in rows
            if 0 <= int(row.bucket) < query.buckets
        ]
