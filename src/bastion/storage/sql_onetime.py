"""One-time tokens in SQLAlchemy.

Spending a token is one ``UPDATE ... WHERE used_at IS NULL AND expires_at >
now RETURNING``: of two concurrent requests with one token exactly one gets
the row back, on SQLite and PostgreSQL alike, with no read-then-write window
(the race Keycloak #37231 and many hand-written reset flows have).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.storage.database import guarded
from bastion.storage.mailport import OnetimeRecord
from bastion.storage.tables import onetime_tokens

#: Spent tokens are kept this long after use (so an admin reading the
#: database can tell "used" from "never existed"), then pruned.
KEEP_SPENT_SECONDS = 3600.0


def _record(row: Any) -> OnetimeRecord:
    return OnetimeRecord(
        user_id=int(row.user_id),
        purpose=row.purpose,
        data=json.loads(row.data),
        expires_at=float(row.expires_at),
    )


async def consume(
    conn: AsyncConnection, digest: str, purposes: frozenset[str], *, now: float
) -> OnetimeRecord | None:
    """Spend the live token with ``digest`` inside the caller's transaction;
    ``None`` if it is unknown, spent, voided, expired or of another purpose."""
    result = await conn.execute(
        update(onetime_tokens)
        .where(
            onetime_tokens.c.digest == digest,
            onetime_tokens.c.purpose.in_(sorted(purposes)),
            onetime_tokens.c.used_at.is_(None),
            onetime_tokens.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(
            onetime_tokens.c.user_id,
            onetime_tokens.c.purpose,
            onetime_tokens.c.data,
            onetime_tokens.c.expires_at,
        )
    )
    row = result.first()
    return _record(row) if row else None


class SqlOnetimeTokens:
    """:class:`bastion.storage.mailport.OnetimeTokenStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def issue(
        self,
        *,
        digest: str,
        purpose: str,
        user_id: int,
        data: dict[str, Any],
        now: float,
        expires_at: float,
    ) -> None:
        async with self._engine.begin() as conn:
            # A newer token voids the older ones of its purpose (SPEC; two
            # live reset links for one account is Keycloak #37231).
            await conn.execute(
                update(onetime_tokens)
                .where(
                    onetime_tokens.c.user_id == user_id,
                    onetime_tokens.c.purpose == purpose,
                    onetime_tokens.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
            await conn.execute(
                insert(onetime_tokens).values(
                    digest=digest,
                    purpose=purpose,
                    user_id=user_id,
                    data=json.dumps(data, separators=(",", ":")),
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    @guarded
    async def find(
        self, digest: str, purposes: frozenset[str], *, now: float
    ) -> OnetimeRecord | None:
        query = select(onetime_tokens).where(
            onetime_tokens.c.digest == digest,
            onetime_tokens.c.purpose.in_(sorted(purposes)),
            onetime_tokens.c.used_at.is_(None),
            onetime_tokens.c.expires_at > now,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    @guarded
    async def prune(self, now: float, batch: int) -> int:
        """Remove up to ``batch`` tokens that expired or were spent (or voided)
        more than :data:`KEEP_SPENT_SECONDS` ago."""
        old = (
            select(onetime_tokens.c.digest)
            .where(
                or_(
                    onetime_tokens.c.expires_at < now,
                    onetime_tokens.c.used_at < now - KEEP_SPENT_SECONDS,
                )
            )
            .limit(batch)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(onetime_tokens).where(onetime_tokens.c.digest.in_(old.scalar_subquery()))
            )
        return int(result.rowcount)
