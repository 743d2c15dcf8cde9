"""Issue 17 #8: an instance that could not load the revocations fails closed.

A new instance that starts while the database is down holds an empty
revocation list; it must not accept bearer tokens (a logged-out one could be
among them) nor call itself ready until one synchronisation has succeeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerFactory, SettingsFactory, bearer, fresh_database, login, register
from tests.servers import PostgresServer, postgres_server


@pytest.fixture
def backend() -> str:
    """The outage is provoked on a PostgreSQL server of the test's own."""
    return "postgres"


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster this test may stop and start."""
    with postgres_server(durable=True) as server:
        yield server


async def test_bearer_routes_wait_for_the_first_revocation_sync(
    own_pg: PostgresServer, make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    settings = await make_settings(database_url=await fresh_database(own_pg))
    first = await start_server(settings)
    async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
    own_pg.stop()
    try:
        # Same settings, so the same signing key: the token verifies there.
        late = await start_server(settings)
        async with httpx.AsyncClient(base_url=late.base_url, timeout=30) as client:
            protected = await client.get("/protected", headers=bearer(tokens))
            ready = await client.get("/ready")
            health = await client.get("/health")
    finally:
        own_pg.start()
    assert late.bastion.container.revocations_synced is False
    assert protected.status_code == 503
    assert int(protected.headers["retry-after"]) >= 1
    assert ready.status_code == 503
    assert ready.json()["revocations"] == "unavailable"
    assert health.status_code == 200
    async with httpx.AsyncClient(base_url=late.base_url, timeout=30) as client:
        for _ in range(300):
            if (await client.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        after = await client.get("/protected", headers=bearer(tokens))
    assert late.bastion.container.revocations_synced is True
    assert after.status_code == 200
