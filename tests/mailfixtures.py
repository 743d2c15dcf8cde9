"""Fixtures of the mail tests (import them into a test module to use them).

``smtp``: one real SMTP server per module (STARTTLS offered, generated
certificate). ``start_mail_server``: Bastion servers (uvicorn on loopback, the
test's backend) sending through it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bastion import create_app
from bastion.storage.smtp import SmtpTransport
from bastion.storage.tables import outbox
from bastion.types import Clock
from tests.conftest import RunningServer, SettingsFactory, _serve
from tests.mailserver import Received, SmtpServer, smtp_server

MailServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server offering STARTTLS, for the whole module."""
    with smtp_server("starttls") as server:
        yield server


@pytest.fixture
async def start_mail_server(
    make_settings: SettingsFactory, smtp: SmtpServer
) -> AsyncIterator[MailServerFactory]:
    """Start Bastion servers that send through ``smtp`` (settings overrides
    as keywords)."""
    stack: list[Callable[[], Awaitable[None]]] = []
    smtp.clear()  # the server serves the module; each test reads its own mail

    async def factory(*, clock: Clock | None = None, **overrides: Any) -> RunningServer:
        settings = await make_settings(**overrides)
        transport = SmtpTransport(smtp.url, tls_context=smtp.tls_context())
        app = create_app(settings, clock=clock, mail_transport=transport)
        return RunningServer(app, await _serve(app, stack))

    yield factory
    for stop in reversed(stack):
        await stop()


def mails_to(smtp: SmtpServer, address: str) -> list[Received]:
    """The messages received for ``address`` so far."""
    return [mail for mail in smtp.received() if address in mail.rcpt_tos]


async def wait_for_mail(
    smtp: SmtpServer, address: str, count: int = 1, seconds: float = 30.0
) -> list[Received]:
    """Wait until ``count`` messages for ``address`` arrived."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = mails_to(smtp, address)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} mails to {address} expected, {len(mails_to(smtp, address))}")


async def pending(server: RunningServer) -> int:
    """Outbox rows not yet sent, dropped or abandoned."""
    engine = server.bastion.container.engine
    async with engine.connect() as conn:
        count = await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.status == "pending")
        )
        return int(count.scalar_one())


async def settle(server: RunningServer, seconds: float = 30.0) -> None:
    """Wait until the server's courier has handled every queued row (then no
    more mail is on its way: a test may assert that none came)."""
    deadline = time.monotonic() + seconds
    while await pending(server):
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.05)
    await server.bastion.container.events.flush()


async def events_of(
    client: httpx.AsyncClient, admin_token: str, type_: str
) -> list[dict[str, Any]]:
    """Stored events of one type, newest first."""
    response = await client.get(
        "/events",
        params={"type": type_},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events
