"""TOTP factors and recovery codes in SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.protocols_mfa import MfaSummary, TotpRecord
from bastion.storage.tables import passkeys, recovery_codes, totp_factors


class SqlMfaStore:
    """:class:`bastion.storage.protocols_mfa.MfaStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def summary(self, user_id: int) -> MfaSummary:
        totp = select(func.count()).where(
            and_(totp_factors.c.user_id == user_id, totp_factors.c.confirmed_at.is_not(None))
        )
        keys = select(func.count()).where(passkeys.c.user_id == user_id)
        codes = select(func.count()).where(
            and_(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
        )
        query = select(totp.scalar_subquery(), keys.scalar_subquery(), codes.scalar_subquery())
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one()
        return MfaSummary(totp=bool(row[0]), passkeys=int(row[1]), recovery_codes_left=int(row[2]))

    @guarded
    async def get_totp(self, user_id: int) -> TotpRecord | None:
        query = select(
            totp_factors.c.secret, totp_factors.c.confirmed_at, totp_factors.c.last_step
        ).where(totp_factors.c.user_id == user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return TotpRecord(row.secret, row.confirmed_at is not None, int(row.last_step))

    @guarded
    async def put_pending_totp(self, user_id: int, sealed_secret: str, *, now: float) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(totp_factors).where(
                    and_(totp_factors.c.user_id == user_id, totp_factors.c.confirmed_at.is_(None))
                )
            )
            exists = (
                await conn.execute(
                    select(totp_factors.c.user_id).where(totp_factors.c.user_id == user_id)
                )
            ).first()
            if exists is not None:
                return False
            await conn.execute(
                insert(totp_factors).values(
                    user_id=user_id, secret=sealed_secret, created_at=now, last_step=-1
                )
            )
        return True

    @guarded
    async def enable_totp(
        self, user_id: int, *, step: int, code_digests: Sequence[str], now: float
    ) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(totp_factors)
                .where(
                    and_(totp_factors.c.user_id == user_id, totp_factors.c.confirmed_at.is_(None))
                )
                .values(confirmed_at=now, last_step=step)
            )
            if result.rowcount != 1:
                return False
            await self._replace_codes(conn, user_id, code_digests, now)
        return True

    @guarded
    async def advance_step(self, user_id: int, step: int) -> bool:
        # RFC 6238 §5.2: the conditional UPDATE is the lock. Two logins racing
        # with one code both ask for the same step; one row change wins.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(totp_factors)
                .where(
                    and_(
                        totp_factors.c.user_id == user_id,
                        totp_factors.c.confirmed_at.is_not(None),
                        totp_factors.c.last_step < step,
                    )
                )
                .values(last_step=step)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def disable_totp(self, user_id: int, *, drop_codes: bool) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(totp_factors).where(totp_factors.c.user_id == user_id)
            )
            if drop_codes:
                await conn.execute(
                    delete(recovery_codes).where(recovery_codes.c.user_id == user_id)
                )
        return bool(result.rowcount)

    @guarded
    async def replace_codes(self, user_id: int, digests: Sequence[str], *, now: float) -> None:
        async with self._engine.begin() as conn:
            await self._replace_codes(conn, user_id, digests, now)

    @staticmethod
    async def _replace_codes(
        conn: AsyncConnection, user_id: int, digests: Sequence[str], now: float
    ) -> None:
        await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        if digests:
            await conn.execute(
                insert(recovery_codes),
                [{"user_id": user_id, "digest": d, "created_at": now} for d in digests],
            )

    @guarded
    async def use_code(self, user_id: int, digest: str, *, now: float) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(recovery_codes)
                .where(
                    and_(
                        recovery_codes.c.user_id == user_id,
                        recovery_codes.c.digest == digest,
                        recovery_codes.c.used_at.is_(None),
                    )
                )
                .values(used_at=now)
            )
        return bool(result.rowcount == 1)

    @guarded
    async def reset(self, user_id: int) -> bool:
        removed = 0
        async with self._engine.begin() as conn:
            for table in (totp_factors, recovery_codes, passkeys):
                result = await conn.execute(delete(table).where(table.c.user_id == user_id))
                removed += result.rowcount
        return removed > 0
