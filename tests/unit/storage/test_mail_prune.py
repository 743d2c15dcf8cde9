"""``prune`` of the outbox and of one-time tokens (registered by the
housekeeping task): finished or dead rows go, live ones stay, in batches."""

from __future__ import annotations

from sqlalchemy import func, select

from bastion.bootstrap import build
from bastion.storage.mailport import NewMail
from bastion.storage.sql_outbox import KEEP_FINISHED_SECONDS
from bastion.storage.tables import onetime_tokens, outbox
from tests.conftest import GOOD_PASSWORD, SettingsFactory


async def test_prune_removes_finished_mail_and_dead_tokens_only(
    make_settings: SettingsFactory,
) -> None:
    container = build(await make_settings(email_verification="off"))
    await container.start()
    await container.mail.courier.stop()  # this test drives the rows itself
    try:
        mail = container.mail
        now = 1_000_000.0
        ids = await mail.outbox.add(
            [NewMail("test", address=f"{n}@p.example") for n in range(5)], now=now
        )
        claimed = await mail.outbox.claim(worker="w", now=now, lease=60, limit=3)
        for row in claimed:
            await mail.outbox.finish(row.id, "w", status="sent", now=now)
        later = now + KEEP_FINISHED_SECONDS + 1
        assert await mail.outbox.prune(later, 2) == 2
        assert await mail.outbox.prune(later, 2) == 1
        assert await mail.outbox.prune(later, 2) == 0
        async with container.engine.connect() as conn:
            left = (await conn.execute(select(outbox.c.id))).scalars().all()
        assert sorted(left) == ids[3:]  # the pending ones stay

        user = await container.user_service.register(
            username="pruned", email="pruned@p.example", age=30, password=GOOD_PASSWORD
        )
        for n, (expires, purpose) in enumerate([(now - 1, "reset"), (now + 999, "verify")]):
            await mail.tokens.issue(
                digest=f"{n:064d}",
                purpose=purpose,
                user_id=user.id,
                data={},
                now=now - 10,
                expires_at=expires,
            )
        assert await mail.tokens.prune(now, 10) == 1
        async with container.engine.connect() as conn:
            count = (
                await conn.execute(select(func.count()).select_from(onetime_tokens))
            ).scalar_one()
        assert count == 1
    finally:
        await container.stop()
