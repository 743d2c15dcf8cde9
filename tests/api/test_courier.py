"""The outbox and its courier: outages, restarts, backoff, abandonment,
encryption at rest, the Maildir default and an embedding app's transport."""

from __future__ import annotations

import asyncio
import stat
import time
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from bastion import Settings, create_app
from bastion.services.courier import RETRY_SCHEDULE
from bastion.storage.smtp import SmtpTransport
from bastion.storage.tables import outbox
from tests.conftest import (
    ManualClock,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    _serve,
    login,
    make_admin,
    register,
)
from tests.mailfixtures import (
    MailServerFactory,
    events_of,
    settle,
    smtp,
    start_mail_server,
    wait_for_mail,
)
from tests.mailserver import SmtpServer
from tests.servers import free_port

__all__ = ["smtp", "start_mail_server"]  # fixtures


async def rows(server: RunningServer) -> list[Any]:
    async with server.bastion.container.engine.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.id))).all())


async def until(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def test_the_backoff_meets_the_spec() -> None:
    # First retry within a minute, at least 5 tries, over at least an hour.
    assert RETRY_SCHEDULE[0] <= 60
    assert len(RETRY_SCHEDULE) + 1 >= 5
    assert sum(RETRY_SCHEDULE) >= 3600


async def test_an_smtp_outage_loses_nothing_and_the_mail_is_sealed_while_queued(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    clock = ManualClock()
    server = await start_mail_server(clock=clock, email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "rita", email="rita@outage.example")
        smtp.stop()
        try:
            assert (
                await client.post("/auth/password/forgot", json={"email": "rita@outage.example"})
            ).status_code == 202

            async def failed_once() -> bool:
                found = await rows(server)
                return bool(found) and found[-1].attempts >= 1

            await until(failed_once, "the first attempt should fail")
            row = (await rows(server))[-1]
            assert row.status == "pending"
            assert row.last_error
            # The composed mail is kept for the retry, but only as ciphertext.
            assert row.payload is not None
            assert "Token" not in row.payload
            assert "rita" not in row.payload
            assert row.next_attempt_at - clock.now() <= 60
        finally:
            smtp.start()
        clock.advance(RETRY_SCHEDULE[0] + 1)
        server.bastion.container.mail.courier.wake()
        mail = (await wait_for_mail(smtp, "rita@outage.example"))[0]
        await settle(server)
        row = (await rows(server))[-1]
        assert row.status == "sent"
        assert row.payload is None  # erased once sent
        assert row.attempts == 1
        assert len([m for m in smtp.received() if "rita@outage.example" in m.rcpt_tos]) == 1
        await client.post(
            "/auth/password/reset",
            json={"token": mail.token, "new_password": "the outage is over, new passphrase"},
        )
        await login(client, "rita", "the outage is over, new passphrase")


async def test_a_mail_is_abandoned_after_the_last_try_with_a_mail_failed_event(
    start_server: ServerFactory, make_settings: SettingsFactory
) -> None:
    clock = ManualClock()
    dead = f"smtp://127.0.0.1:{free_port()}"
    server = await start_server(
        await make_settings(smtp_url=dead, email_verification="off"), clock=clock
    )
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "sam", email="sam@abandon.example")
        await client.post("/auth/password/forgot", json={"email": "sam@abandon.example"})
        started = clock.now()
        for attempt in range(1, len(RETRY_SCHEDULE) + 2):

            async def tried(n: int = attempt) -> bool:
                return bool((await rows(server))[-1].attempts >= n)

            server.bastion.container.mail.courier.wake()
            await until(tried, f"attempt {attempt}")
            if attempt <= len(RETRY_SCHEDULE):
                clock.advance(RETRY_SCHEDULE[attempt - 1] + 1)
        row = (await rows(server))[-1]
        assert row.status == "abandoned"
        assert row.attempts == len(RETRY_SCHEDULE) + 1 >= 5
        assert row.payload is None  # erased once abandoned
        assert clock.now() - started >= 3600
        admin = await make_admin(server)
        admin_token = (await login(client, admin["username"]))["access_token"]
        failed = await events_of(client, admin_token, "mail_failed")
        assert failed[0]["detail"]["kind"] == "reset"
        assert failed[0]["detail"]["attempts"] == row.attempts
        assert failed[0]["outcome"] == "failure"


async def test_queued_mail_survives_a_restart(
    make_settings: SettingsFactory, smtp: SmtpServer
) -> None:
    smtp.clear()
    settings = await make_settings(email_verification="off")
    stack: list[Any] = []
    dead = SmtpTransport(f"smtp://127.0.0.1:{free_port()}")
    first = create_app(settings, mail_transport=dead)
    base = await _serve(first, stack)
    async with httpx.AsyncClient(base_url=base) as client:
        await register(client, "tina", email="tina@restart.example")
        await client.post("/auth/password/forgot", json={"email": "tina@restart.example"})
        server = RunningServer(first, base)

        async def failed_once() -> bool:
            found = await rows(server)
            return bool(found) and found[-1].attempts >= 1

        await until(failed_once, "the first attempt should fail")
    await stack.pop()()
    # A new process on the same database, now with a working relay. The retry
    # is due within a minute of the failure.
    good = SmtpTransport(smtp.url, tls_context=smtp.tls_context())
    second = create_app(settings, mail_transport=good)
    await _serve(second, stack)
    try:
        mails = await wait_for_mail(smtp, "tina@restart.example", seconds=RETRY_SCHEDULE[0] + 30)
        assert len(mails) == 1
        assert mails[0].message["Subject"] == "Reset your password"
    finally:
        for stop in reversed(stack):
            await stop()


async def test_without_smtp_url_mail_goes_to_a_private_maildir(
    start_server: ServerFactory, make_settings: SettingsFactory
) -> None:
    settings = await make_settings()
    server = await start_server(settings)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "uma", email="uma@maildir.example")
        await settle(server)
    maildir = settings.data_dir / "mail"
    files = list((maildir / "new").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    for folder in (maildir, maildir / "new", maildir / "tmp"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    text = files[0].read_text()
    assert "To: uma@maildir.example" in text
    assert "Token: " in text
    assert list((maildir / "tmp").iterdir()) == []


class AppTransport:
    """An embedding app's own transport (it only has to have ``send``)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


async def test_an_embedding_app_passes_its_own_transport(
    make_settings: SettingsFactory,
) -> None:
    settings: Settings = await make_settings()
    transport = AppTransport()
    stack: list[Any] = []
    app = create_app(settings, mail_transport=transport)
    base = await _serve(app, stack)
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await register(client, "vera", email="vera@app.example")
            await settle(RunningServer(app, base))
        assert [m["To"] for m in transport.sent] == ["vera@app.example"]
        assert not (settings.data_dir / "mail").exists()
    finally:
        for stop in reversed(stack):
            await stop()
