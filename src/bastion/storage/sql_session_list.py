"""The session list (``GET /users/me/sessions``) in SQLAlchemy."""

from __future__ import annotations

import json

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.protocols_mfa import SessionInfo
from bastion.storage.tables import sessions


class SqlSessionDirectory:
    """:class:`bastion.storage.protocols_mfa.SessionDirectory` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def live(self, user_id: int, *, now: float) -> list[SessionInfo]:
        query = (
            select(
                sessions.c.id,
                sessions.c.created_at,
                sessions.c.last_used_at,
                sessions.c.ip,
                sessions.c.user_agent,
                sessions.c.amr,
            )
            .where(
                and_(
                    sessions.c.user_id == user_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now,
                )
            )
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            SessionInfo(
                id=row.id,
                created_at=float(row.created_at),
                last_used_at=float(row.last_used_at or row.created_at),
                ip=row.ip,
                user_agent=row.user_agent,
                amr=tuple(json.loads(row.amr or "[]")),
            )
            for row in rows
        ]

    @guarded
    async def owner(self, session_id: str, *, now: float) -> int | None:
        query = select(sessions.c.user_id).where(
            and_(
                sessions.c.id == session_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else int(row.user_id)
