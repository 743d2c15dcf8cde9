"""WebAuthn credentials in SQLAlchemy."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.errors import Conflict
from bastion.storage.database import guarded
from bastion.storage.protocols_mfa import PasskeyRecord
from bastion.storage.tables import passkeys


def _record(row: Any) -> PasskeyRecord:
    return PasskeyRecord(
        id=row.id,
        user_id=int(row.user_id),
        credential_id=row.credential_id,
        public_key=base64.b64decode(row.public_key),
        sign_count=int(row.sign_count),
        user_handle=row.user_handle,
        name=row.name,
        backed_up=bool(row.backed_up),
        created_at=float(row.created_at),
        last_used_at=None if row.last_used_at is None else float(row.last_used_at),
    )


class SqlPasskeyStore:
    """:class:`bastion.storage.protocols_mfa.PasskeyStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def add(self, record: PasskeyRecord) -> None:
        values = {
            "id": record.id,
            "user_id": record.user_id,
            "credential_id": record.credential_id,
            "public_key": base64.b64encode(record.public_key).decode("ascii"),
            "sign_count": record.sign_count,
            "user_handle": record.user_handle,
            "name": record.name,
            "backed_up": record.backed_up,
            "created_at": record.created_at,
            "last_used_at": record.last_used_at,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(passkeys).values(**values))
        except IntegrityError as exc:
            raise Conflict("this passkey is already registered", field="passkey") from exc

    @guarded
    async def of_user(self, user_id: int) -> list[PasskeyRecord]:
        query = (
            select(passkeys)
            .where(passkeys.c.user_id == user_id)
            .order_by(passkeys.c.created_at, passkeys.c.id)
        )
        async with self._engine.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]

    @guarded
    async def find(self, credential_id: str) -> PasskeyRecord | None:
        query = select(passkeys).where(passkeys.c.credential_id == credential_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    @guarded
    async def record_use(
        self, passkey_id: str, *, old_count: int, new_count: int, now: float
    ) -> bool:
        # Conditional on the count read before verification: two replays of one
        # assertion racing each other cannot both pass the counter check.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(passkeys)
                .where(and_(passkeys.c.id == passkey_id, passkeys.c.sign_count == old_count))
                .values(sign_count=new_count, last_used_at=now)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def delete(self, user_id: int, passkey_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(passkeys).where(
                    and_(passkeys.c.id == passkey_id, passkeys.c.user_id == user_id)
                )
            )
        return bool(result.rowcount)
