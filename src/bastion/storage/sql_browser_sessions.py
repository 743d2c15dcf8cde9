"""Browser sessions of the web pages in SQLAlchemy."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.protocols import BrowserSessionRecord
from bastion.storage.tables import browser_sessions, sessions


class SqlBrowserSessionStore:
    """:class:`bastion.storage.protocols.BrowserSessionStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def create(
        self,
        *,
        digest: str,
        session_id: str,
        user_id: int,
        now: float,
        expires_at: float,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(browser_sessions).values(
                    digest=digest,
                    session_id=session_id,
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                    ip=ip,
                    user_agent=user_agent,
                )
            )

    @guarded
    async def find(self, digest: str, *, now: float) -> BrowserSessionRecord | None:
        # The family's revocation is read from the sessions table, which keeps
        # it for the family's life; the in-memory revocation list forgets it
        # once the last access token has expired, long before a browser
        # session could.
        query = (
            select(
                browser_sessions.c.session_id,
                browser_sessions.c.user_id,
                browser_sessions.c.created_at,
                browser_sessions.c.last_seen_at,
                browser_sessions.c.expires_at,
            )
            .join(sessions, sessions.c.id == browser_sessions.c.session_id)
            .where(
                and_(
                    browser_sessions.c.digest == digest,
                    browser_sessions.c.expires_at > now,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now,
                )
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return BrowserSessionRecord(
            session_id=str(row.session_id),
            user_id=int(row.user_id),
            created_at=float(row.created_at),
            last_seen_at=float(row.last_seen_at),
            expires_at=float(row.expires_at),
        )

    @guarded
    async def touch(self, digest: str, *, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.digest == digest)
                .values(last_seen_at=now)
            )

    @guarded
    async def delete(self, digest: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(browser_sessions).where(browser_sessions.c.digest == digest))

    @guarded
    async def prune(self, *, before: float, limit: int) -> int:
        doomed = (
            select(browser_sessions.c.digest)
            .where(browser_sessions.c.expires_at < before)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(browser_sessions).where(
                    browser_sessions.c.digest.in_(doomed.scalar_subquery())
                )
            )
        return int(result.rowcount or 0)

    @guarded
    async def count_active(self, *, now: float, idle_since: float) -> tuple[int, int]:
        live_api = select(func.count()).where(
            and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
        )
        live_browser = (
            select(func.count())
            .select_from(browser_sessions.join(sessions))
            .where(
                and_(
                    browser_sessions.c.expires_at > now,
                    browser_sessions.c.last_seen_at > idle_since,
                    sessions.c.revoked_at.is_(None),
                )
            )
        )
        async with self._engine.connect() as conn:
            api = int((await conn.execute(live_api)).scalar_one())
            browser = int((await conn.execute(live_browser)).scalar_one())
        return api, browser
