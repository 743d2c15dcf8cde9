"""Users in SQLAlchemy (SQLite and PostgreSQL through one code path)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.errors import Conflict
from bastion.storage.database import guarded
from bastion.storage.protocols import NewUser, Revocation, StoredUser
from bastion.storage.tables import revocations, sessions, users
from bastion.types import User, utc

_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.age,
    users.c.permissions,
    users.c.created_at,
    users.c.password_hash,
    users.c.token_version,
)


def escape_like(term: str) -> str:
    """Escape LIKE wildcards so ``%``, ``_`` and ``\\`` match literally."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _holds_nul(text: str) -> bool:
    # PostgreSQL text cannot hold U+0000 (asyncpg refuses to send it: a 500),
    # and no username contains it, so such a lookup finds nobody on any backend.
    return "\x00" in text


def _user(row: Any) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        email=row.email,
        age=int(row.age),
        permissions=tuple(json.loads(row.permissions)),
        created_at=utc(row.created_at),
    )


def _stored(row: Any) -> StoredUser:
    return StoredUser(_user(row), row.password_hash, int(row.token_version))


def _revocation_row(revocation: Revocation) -> dict[str, Any]:
    return {
        "subject": revocation.subject,
        "min_version": revocation.min_version,
        "expires_at": revocation.expires_at,
    }


class SqlUserStore:
    """:class:`bastion.storage.protocols.UserStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def create(self, new: NewUser) -> User:
        values = {
            "username": new.username,
            "username_key": new.username.lower(),
            "email": new.email,
            "email_key": new.email.lower(),
            "age": new.age,
            "password_hash": new.password_hash,
            "permissions": json.dumps(sorted(new.permissions)),
            "token_version": 0,
            "created_at": new.created_at,
        }
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(insert(users).values(values).returning(users.c.id))
                user_id = int(result.scalar_one())
        except IntegrityError as exc:
            field = "username" if "username" in str(exc.orig).lower() else "email"
            raise Conflict(f"{field} is already taken", field=field) from exc
        return User(
            id=user_id,
            username=new.username,
            email=new.email,
            age=new.age,
            permissions=tuple(sorted(new.permissions)),
            created_at=utc(new.created_at),
        )

    @guarded
    async def get(self, user_id: int) -> StoredUser | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(users.c.id == user_id))).first()
        return _stored(row) if row else None

    @guarded
    async def get_by_username(self, username: str) -> StoredUser | None:
        if _holds_nul(username):
            return None
        query = select(*_COLUMNS).where(users.c.username_key == username.lower())
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _stored(row) if row else None

    @guarded
    async def search(self, term: str, limit: int, after: str | None = None) -> list[User]:
        if _holds_nul(term) or (after is not None and _holds_nul(after)):
            return []
        pattern = f"%{escape_like(term.lower())}%"
        query = (
            select(*_COLUMNS)
            .where(users.c.username_key.like(pattern, escape="\\"))
            .order_by(users.c.username_key)
            .limit(limit)
        )
        if after is not None:
            query = query.where(users.c.username_key > after.lower())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_user(row) for row in rows]

    @guarded
    async def set_permissions(
        self, user_id: int, permissions: tuple[str, ...], revocation: Revocation
    ) -> StoredUser | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    permissions=json.dumps(sorted(permissions)),
                    token_version=users.c.token_version + 1,
                )
                .returning(*_COLUMNS)
            )
            row = result.first()
            if row is None:
                return None
            stored = _stored(row)
            mark = Revocation(revocation.subject, stored.token_version, revocation.expires_at)
            await conn.execute(insert(revocations).values(_revocation_row(mark)))
        return stored

    @guarded
    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )

    @guarded
    async def delete(self, user_id: int, revocation: Revocation) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.id == user_id))
            if result.rowcount == 0:
                return False
            await conn.execute(insert(revocations).values(_revocation_row(revocation)))
        return True

    @guarded
    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
