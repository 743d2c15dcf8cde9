"""The mail outbox in SQLAlchemy (SQLite and PostgreSQL through one code path).

Rows are claimed with one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
SKIP LOCKED) RETURNING``: on PostgreSQL concurrent couriers skip each other's
rows instead of waiting or taking them twice; SQLite has no row locks but runs
each write statement under its database-wide write lock, so the same single
statement is atomic there too. A claim is a lease: a courier that dies
mid-send leaves the row to be taken again once the lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.mailport import PENDING, NewMail, OutboxRow
from bastion.storage.tables import outbox

#: Finished rows are kept this long: the per-address hourly limit counts them.
KEEP_FINISHED_SECONDS = 2 * 3600.0
HOUR = 3600.0


def _values(mail: NewMail, now: float, user_id: int | None = None) -> dict[str, Any]:
    return {
        "kind": mail.kind,
        "user_id": mail.user_id if mail.user_id is not None else user_id,
        "address": mail.address,
        "data": json.dumps(mail.data, separators=(",", ":")),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def insert_mail(
    conn: AsyncConnection, mails: Sequence[NewMail], *, now: float, user_id: int | None = None
) -> list[int]:
    """Queue ``mails`` inside the caller's transaction (the change that causes
    them commits with them, or neither does). ``user_id`` fills mails that
    name no user (a registration's, whose id the insert just made)."""
    ids = []
    for mail in mails:
        result = await conn.execute(
            insert(outbox).values(_values(mail, now, user_id)).returning(outbox.c.id)
        )
        ids.append(int(result.scalar_one()))
    return ids


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=int(row.id),
        kind=row.kind,
        user_id=int(row.user_id) if row.user_id is not None else None,
        address=row.address,
        data=json.loads(row.data),
        payload=row.payload,
        attempts=int(row.attempts),
        created_at=float(row.created_at),
    )


class SqlOutbox:
    """:class:`bastion.storage.mailport.OutboxStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def add(self, mails: list[NewMail], *, now: float) -> list[int]:
        async with self._engine.begin() as conn:
            return await insert_mail(conn, mails, now=now)

    @guarded
    async def request(
        self, mail: NewMail, *, now: float, per_hour: int, also: tuple[NewMail, ...] = ()
    ) -> bool:
        # One statement: INSERT ... SELECT ... WHERE (count of the last hour) < n.
        # The same work whether or not any account has the address.
        recent = (
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.kind == mail.kind,
                outbox.c.address == mail.address,
                outbox.c.created_at > now - HOUR,
            )
            .scalar_subquery()
        )
        values = _values(mail, now)
        columns = list(values)
        source = select(*(literal(values[name]) for name in columns)).where(recent < per_hour)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                insert(outbox).from_select([outbox.c[name] for name in columns], source)
            )
            queued = bool(result.rowcount)
            if queued and also:
                await insert_mail(conn, also, now=now)
        return queued

    @guarded
    async def claim(
        self, *, worker: str, now: float, lease: float, limit: int, only: int | None = None
    ) -> list[OutboxRow]:
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.status == PENDING,
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
            )
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if only is not None:
            due = due.where(outbox.c.id == only)
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(*outbox.c)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(statement)).all()
        return sorted((_row(row) for row in rows), key=lambda r: r.id)

    def _mine(self, row_id: int, worker: str) -> Any:
        return and_(outbox.c.id == row_id, outbox.c.claimed_by == worker)

    @guarded
    async def save_payload(self, row_id: int, worker: str, payload: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox).where(self._mine(row_id, worker)).values(payload=payload)
            )

    @guarded
    async def finish(
        self,
        row_id: int,
        worker: str,
        *,
        status: str,
        now: float,
        attempts: int | None = None,
        error: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "payload": None,
            "claimed_until": None,
        }
        if attempts is not None:
            values["attempts"] = attempts
        if error is not None:
            values["last_error"] = error[:200]
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(outbox)
                .where(self._mine(row_id, worker), outbox.c.status == PENDING)
                .values(**values)
            )
        return bool(result.rowcount)

    @guarded
    async def retry_later(
        self, row_id: int, worker: str, *, attempts: int, at: float, error: str
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(self._mine(row_id, worker))
                .values(
                    attempts=attempts,
                    next_attempt_at=at,
                    claimed_until=None,
                    last_error=error[:200],
                )
            )

    @guarded
    async def status(self, row_id: int) -> tuple[str, int, str | None] | None:
        query = select(outbox.c.status, outbox.c.attempts, outbox.c.last_error).where(
            outbox.c.id == row_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.status, int(row.attempts), row.last_error) if row else None

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove up to ``batch`` sent, dropped or abandoned rows older than
        :data:`KEEP_FINISHED_SECONDS` (their payloads were erased already)."""
        old = (
            select(outbox.c.id)
            .where(outbox.c.status != PENDING, outbox.c.finished_at < now - KEEP_FINISHED_SECONDS)
            .order_by(outbox.c.id)
            .limit(batch)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(outbox).where(outbox.c.id.in_(old.scalar_subquery()))
            )
        return int(result.rowcount)
