"""The writes of account recovery, each one transaction: spend a token and
apply its effect (new password, verified or changed address) together with
the notice mail it causes."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.errors import Conflict
from bastion.security.onetime import EMAIL_CHANGE, RESET, VERIFY
from bastion.storage.database import guarded
from bastion.storage.mailport import NewMail, OnetimeRecord, Recipient
from bastion.storage.sql_onetime import consume
from bastion.storage.sql_outbox import insert_mail
from bastion.storage.tables import users


class SqlRecoveryStore:
    """:class:`bastion.storage.mailport.RecoveryStore` on an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @guarded
    async def recipient(self, address: str) -> Recipient | None:
        """The account whose address is ``address`` (any case), if any."""
        if "\x00" in address:
            return None
        query = select(users.c.id, users.c.username, users.c.email, users.c.email_verified).where(
            users.c.email_key == address.lower()
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Recipient(int(row.id), row.username, row.email, bool(row.email_verified))

    @guarded
    async def email_taken(self, address: str) -> bool:
        """Whether some account has ``address`` (any case)."""
        query = select(func.count()).select_from(users).where(users.c.email_key == address.lower())
        async with self._engine.connect() as conn:
            return bool((await conn.execute(query)).scalar_one())

    @guarded
    async def reset_password(
        self, digest: str, *, password_hash: str, now: float, notice: NewMail
    ) -> OnetimeRecord | None:
        """Spend a reset token, store the new hash and queue the notice; ``None``
        (and nothing changed) if the token is not live."""
        async with self._engine.begin() as conn:
            record = await consume(conn, digest, frozenset({RESET}), now=now)
            if record is None:
                return None
            await conn.execute(
                update(users)
                .where(users.c.id == record.user_id)
                # A new credential version in the same transaction: no login
                # that verified the old password can open a session after it
                # (issue 17 #5).
                .values(
                    password_hash=password_hash,
                    credential_version=users.c.credential_version + 1,
                )
            )
            await insert_mail(conn, [notice], now=now, user_id=record.user_id)
        return record

    @guarded
    async def confirm_email(self, digest: str, *, now: float) -> OnetimeRecord | None:
        """Spend a verification or email-change token and apply it.

        A verification token confirms the address it was sent to only while
        the account still has that address; an email-change token moves the
        account to the new, now verified, address.

        Raises:
            Conflict: the new address was taken meanwhile (the token stays live).
        """
        try:
            async with self._engine.begin() as conn:
                record = await consume(conn, digest, frozenset({VERIFY, EMAIL_CHANGE}), now=now)
                if record is None:
                    return None
                address = str(record.data.get("email", ""))
                if record.purpose == VERIFY:
                    result = await conn.execute(
                        update(users)
                        .where(users.c.id == record.user_id, users.c.email_key == address.lower())
                        .values(email_verified=True)
                    )
                else:
                    result = await conn.execute(
                        update(users)
                        .where(users.c.id == record.user_id)
                        .values(email=address, email_key=address.lower(), email_verified=True)
                    )
                if result.rowcount == 0:
                    return None
        except IntegrityError as exc:
            raise Conflict("email is already taken", field="email") from exc
        return record
