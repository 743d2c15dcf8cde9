"""Known-device tokens in SQLAlchemy (SQLite and PostgreSQL, one code path)."""

from __future__ import annotations

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.tables import device_tokens


class SqlDeviceTokenStore:
    """:class:`bastion.storage.protocols.DeviceTokenStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def reserve(self, digest: str, user_id: int, *, budget: int, now: float) -> bool:
        # The conditional UPDATE is the check and the count at once: of
        # concurrent attempts with one token, at most ``budget`` pass.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(device_tokens)
                .where(
                    and_(
                        device_tokens.c.digest == digest,
                        device_tokens.c.user_id == user_id,
                        device_tokens.c.failures < budget,
                    )
                )
                .values(failures=device_tokens.c.failures + 1)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def refund(self, digest: str, user_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(device_tokens)
                .where(
                    and_(
                        device_tokens.c.digest == digest,
                        device_tokens.c.user_id == user_id,
                        device_tokens.c.failures > 0,
                    )
                )
                .values(failures=device_tokens.c.failures - 1)
            )

    @guarded
    async def succeed(self, digest: str, user_id: int, *, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(device_tokens)
                .where(and_(device_tokens.c.digest == digest, device_tokens.c.user_id == user_id))
                .values(failures=0, last_used_at=now)
            )

    @guarded
    async def issue(self, digest: str, user_id: int, *, now: float, keep: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(device_tokens).values(
                    digest=digest, user_id=user_id, failures=0, created_at=now, last_used_at=now
                )
            )
            # Bounded per user: a script logging in again and again (each
            # login without a token gets a new one) cannot grow the table.
            newest = (
                select(device_tokens.c.digest)
                .where(device_tokens.c.user_id == user_id)
                .order_by(device_tokens.c.last_used_at.desc(), device_tokens.c.created_at.desc())
                .limit(keep)
            )
            await conn.execute(
                delete(device_tokens).where(
                    and_(
                        device_tokens.c.user_id == user_id,
                        device_tokens.c.digest.not_in(newest),
                    )
                )
            )
