"""Outages: a database that goes away gets 503 + Retry-After, never a 500,
and service resumes without a restart when it is back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerFactory, SettingsFactory, bearer, fresh_database, login, register
from tests.servers import PostgresServer, postgres_server


@pytest.fixture
def backend() -> str:
    """Faults are provoked on a PostgreSQL server of the test's own."""
    return "postgres"


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster this test may stop and start."""
    with postgres_server(durable=True) as server:
        yield server


async def test_database_outage_answers_503_and_recovers(
    own_pg: PostgresServer, make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    settings = await make_settings(database_url=await fresh_database(own_pg))
    server = await start_server(settings)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        own_pg.stop()
        try:
            during = [
                await client.post(
                    "/users",
                    json={
                        "username": "bob",
                        "email": "bob@example.com",
                        "age": 30,
                        "password": "correct horse battery staple",
                    },
                ),
                await client.get("/users/me", headers=bearer(tokens)),
                await client.post(
                    "/auth/token",
                    data={
                        "grant_type": "password",
                        "username": "alice",
                        "password": "correct horse battery staple",
                    },
                ),
                await client.get("/ready"),
            ]
            health = await client.get("/health")
            protected = await client.get("/protected", headers=bearer(tokens))
        finally:
            own_pg.start()
        after = await client.get("/users/me", headers=bearer(tokens))
        bob = await client.post(
            "/users",
            json={
                "username": "bob",
                "email": "bob@example.com",
                "age": 30,
                "password": "correct horse battery staple",
            },
        )
    assert [r.status_code for r in during] == [503, 503, 503, 503]
    assert all(int(r.headers["retry-after"]) >= 1 for r in during)
    assert all("Traceback" not in r.text for r in during)
    assert health.status_code == 200
    assert protected.status_code == 200, "token checks need no database"
    assert after.status_code == 200
    assert bob.status_code == 201


async def test_an_unmigrated_postgresql_database_refuses_to_start_with_the_remedy(
    pg: PostgresServer, make_settings: SettingsFactory
) -> None:
    import asyncpg

    from bastion import create_app
    from bastion.errors import ConfigurationError

    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        await conn.execute('CREATE DATABASE "not_migrated"')
    finally:
        await conn.close()
    app = create_app(await make_settings(database_url=pg.url("not_migrated")))
    with pytest.raises(ConfigurationError, match="run `bastion migrate`"):
        async with app.router.lifespan_context(app):
            pass
