"""Users in SQLAlchemy (SQLite and PostgreSQL through one code path)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.errors import Conflict
from bastion.security.revocation import SESSION_PREFIX
from bastion.storage.database import guarded
from bastion.storage.mailport import NewMail
from bastion.storage.protocols import NewUser, Revocation, StoredUser
from bastion.storage.sql_outbox import insert_mail
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
    users.c.credential_version,
    users.c.email_verified,
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
        email_verified=bool(row.email_verified),
    )


def _stored(row: Any) -> StoredUser:
    return StoredUser(
        _user(row), row.password_hash, int(row.token_version), int(row.credential_version)
    )


async def bump_credential_version(conn: AsyncConnection, user_id: int) -> int | None:
    """Bump ``user_id``'s credential version inside the caller's transaction.

    Every change of what a session is opened with (password, permissions,
    TOTP, passkeys, a reset) calls this in the transaction that makes the
    change. The UPDATE also locks the user's row until that transaction ends,
    which serialises the change with any session being opened
    (:meth:`bastion.storage.sql_sessions.SqlSessionStore.create`).

    Returns:
        The new version, or ``None`` if there is no such user.
    """
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(credential_version=users.c.credential_version + 1)
        .returning(users.c.credential_version)
    )
    version = result.scalar_one_or_none()
    return None if version is None else int(version)


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
    async def create(self, new: NewUser, mail: Sequence[NewMail] = ()) -> User:
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
            "email_verified": new.email_verified,
        }
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(insert(users).values(values).returning(users.c.id))
                user_id = int(result.scalar_one())
                await insert_mail(conn, mail, now=new.created_at, user_id=user_id)
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
            email_verified=new.email_verified,
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
                    credential_version=users.c.credential_version + 1,
                )
                .returning(*_COLUMNS)
            )
            row = result.first()
            if row is None:
                return None
            stored = _stored(row)
            mark = Revocation(revocation.subject, stored.token_version, revocation.expires_at)
            # The newest floor supersedes the older ones: one row per user.
            await conn.execute(delete(revocations).where(revocations.c.subject == mark.subject))
            await conn.execute(insert(revocations).values(_revocation_row(mark)))
        return stored

    @guarded
    async def upgrade_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(users)
                .where(and_(users.c.id == user_id, users.c.password_hash == old_hash))
                .values(password_hash=new_hash)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def replace_password(
        self,
        user_id: int,
        password_hash: str,
        *,
        keep_session: str | None,
        now: float,
        expires_at: float,
    ) -> list[str] | None:
        async with self._engine.begin() as conn:
            # First the user's row: bumping the version locks it, so a session
            # being opened either committed before (and is revoked below) or
            # waits and then fails its version check.
            if await bump_credential_version(conn, user_id) is None:
                return None
            await conn.execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )
            live = and_(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
            if keep_session is not None:
                live = and_(live, sessions.c.id != keep_session)
            revoked = [
                str(sid)
                for sid in (await conn.execute(select(sessions.c.id).where(live))).scalars()
            ]
            if revoked:
                await conn.execute(
                    update(sessions).where(sessions.c.id.in_(revoked)).values(revoked_at=now)
                )
                await conn.execute(
                    insert(revocations),
                    [
                        {
                            "subject": f"{SESSION_PREFIX}{sid}",
                            "min_version": 0,
                            "expires_at": expires_at,
                        }
                        for sid in revoked
                    ],
                )
        return revoked

    @guarded
    async def bump_credential_version(self, user_id: int) -> int | None:
        async with self._engine.begin() as conn:
            return await bump_credential_version(conn, user_id)

    @guarded
    async def delete(self, user_id: int, revocation: Revocation) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.id == user_id))
            if result.rowcount == 0:
                return False
            # The deletion mark replaces the user's permanent version floor.
            await conn.execute(
                delete(revocations).where(revocations.c.subject == revocation.subject)
            )
            await conn.execute(insert(revocations).values(_revocation_row(revocation)))
        return True

    @guarded
    async def hash_schemes(self) -> dict[str, int]:
        scheme = func.substr(users.c.password_hash, 1, 3)
        query = select(scheme, func.count()).group_by(scheme)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        counts: dict[str, int] = {}
        for prefix, count in rows:
            name = "argon2" if prefix == "$ar" else "bcrypt"
            counts[name] = counts.get(name, 0) + int(count)
        return counts

    @guarded
    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
