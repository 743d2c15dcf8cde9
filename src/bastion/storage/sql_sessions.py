"""Sessions, refresh tokens and the revocation log in SQLAlchemy."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.protocols import RefreshRecord, Revocation, TokenOutcome
from bastion.storage.tables import refresh_tokens, revocations, sessions, users


async def _lock_if_current(conn: AsyncConnection, user_id: int, credential_version: int) -> bool:
    """Whether the user still has ``credential_version``, locking the row.

    A no-op UPDATE, not a SELECT: it takes the row lock on PostgreSQL (and the
    write lock on SQLite) before reading, and under READ COMMITTED PostgreSQL
    re-checks the condition against a concurrent change that commits first.
    So a credential change (which bumps the version in its own transaction,
    ``bastion.storage.sql_users.bump_credential_version``) and a session
    being opened are serialised: the session either exists before the change
    (which then revokes it) or sees the new version and starts over.
    """
    result = await conn.execute(
        update(users)
        .where(and_(users.c.id == user_id, users.c.credential_version == credential_version))
        .values(credential_version=users.c.credential_version)
    )
    return bool(result.rowcount == 1)


class SqlSessionStore:
    """:class:`bastion.storage.protocols.SessionStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def create(
        self,
        *,
        session_id: str,
        user_id: int,
        credential_version: int,
        digest: str,
        now: float,
        expires_at: float,
        amr: Sequence[str] = (),
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bool:
        async with self._engine.begin() as conn:
            if not await _lock_if_current(conn, user_id, credential_version):
                return False
            await conn.execute(
                insert(sessions).values(
                    id=session_id,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    last_used_at=now,
                    amr=json.dumps(list(amr)),
                    ip=ip,
                    user_agent=user_agent,
                )
            )
            await conn.execute(
                insert(refresh_tokens).values(
                    digest=digest, session_id=session_id, created_at=now, expires_at=expires_at
                )
            )
        return True

    @guarded
    async def find(self, digest: str) -> RefreshRecord | None:
        query = (
            select(
                refresh_tokens.c.session_id,
                sessions.c.user_id,
                refresh_tokens.c.expires_at,
                refresh_tokens.c.used_at,
                sessions.c.revoked_at,
                sessions.c.amr,
            )
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.digest == digest)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return RefreshRecord(
            session_id=row.session_id,
            user_id=int(row.user_id),
            expires_at=float(row.expires_at),
            used_at=row.used_at,
            session_revoked=row.revoked_at is not None,
            amr=tuple(json.loads(row.amr or "[]")),
        )

    @guarded
    async def spend(self, digest: str, *, now: float) -> bool:
        # The conditional UPDATE is the lock: of two concurrent exchanges of one
        # token, exactly one changes a row.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(refresh_tokens)
                .where(and_(refresh_tokens.c.digest == digest, refresh_tokens.c.used_at.is_(None)))
                .values(used_at=now)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def add_token(
        self,
        *,
        session_id: str,
        user_id: int,
        credential_version: int,
        digest: str,
        now: float,
        expires_at: float,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> TokenOutcome:
        async with self._engine.begin() as conn:
            if not await _lock_if_current(conn, user_id, credential_version):
                return "stale"
            # Refresh slides the session's end along with its newest token,
            # unless the session was ended meanwhile.
            # The session list shows where and when it was last used.
            slid = await conn.execute(
                update(sessions)
                .where(and_(sessions.c.id == session_id, sessions.c.revoked_at.is_(None)))
                .values(expires_at=expires_at, last_used_at=now, ip=ip, user_agent=user_agent)
            )
            if slid.rowcount != 1:
                return "revoked"
            await conn.execute(
                insert(refresh_tokens).values(
                    digest=digest, session_id=session_id, created_at=now, expires_at=expires_at
                )
            )
        return "added"

    @guarded
    async def revoke(self, session_ids: Sequence[str], *, now: float, expires_at: float) -> None:
        if not session_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(and_(sessions.c.id.in_(list(session_ids)), sessions.c.revoked_at.is_(None)))
                .values(revoked_at=now)
            )
            await conn.execute(
                insert(revocations),
                [
                    {"subject": f"session:{sid}", "min_version": 0, "expires_at": expires_at}
                    for sid in session_ids
                ],
            )

    @guarded
    async def active_sessions(self, user_id: int, *, now: float) -> list[str]:
        query = select(sessions.c.id).where(
            and_(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
        )
        async with self._engine.connect() as conn:
            return [str(sid) for sid in (await conn.execute(query)).scalars()]


class SqlRevocationStore:
    """:class:`bastion.storage.protocols.RevocationStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def load(self, *, after_id: int, now: float) -> list[tuple[int, Revocation]]:
        query = (
            select(
                revocations.c.id,
                revocations.c.subject,
                revocations.c.min_version,
                revocations.c.expires_at,
            )
            .where(and_(revocations.c.id > after_id, revocations.c.expires_at > now))
            .order_by(revocations.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (int(r.id), Revocation(r.subject, int(r.min_version), float(r.expires_at)))
            for r in rows
        ]
