"""Fixtures: real servers (PostgreSQL, Redis, Bastion under uvicorn) on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bastion import Settings, create_app
from bastion.api.app import Bastion
from bastion.types import Clock
from tests.servers import PostgresServer, RedisServer, postgres_server, redis_server

# The machine's own BASTION_* variables must not leak into tests.
for _name in [name for name in os.environ if name.startswith("BASTION_")]:
    del os.environ[_name]

GOOD_PASSWORD = "correct horse battery staple"
#: Generous limits for tests that are not about rate limiting.
UNLIMITED = {
    "rate_limit": "100000/minute",
    "login_rate_limit": "100000/minute",
    "register_rate_limit": "100000/minute",
}


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """The session's Redis server."""
    with redis_server() as server:
        yield server


async def fresh_database(pg: PostgresServer) -> str:
    """A new, empty, migrated database on ``pg``; returns its SQLAlchemy URL."""
    from bastion.storage.database import create_engine
    from bastion.storage.migrate import upgrade

    name = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = pg.url(name)
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each API test runs on the embedded SQLite and on PostgreSQL."""
    return str(request.param)


SettingsFactory = Callable[..., Awaitable[Settings]]


@pytest.fixture
def make_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SettingsFactory:
    """Build settings for this test's backend; keyword arguments override."""

    async def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", **UNLIMITED}
        if backend == "postgres" and "database_url" not in overrides:
            pg_server: PostgresServer = request.getfixturevalue("pg")
            values["database_url"] = await fresh_database(pg_server)
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory


class RunningServer:
    """A Bastion app served by uvicorn on 127.0.0.1."""

    def __init__(self, app: FastAPI, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    @property
    def bastion(self) -> Bastion:
        """The app's Bastion instance (to reach its services in tests)."""
        auth = self.app.state.bastion
        assert isinstance(auth, Bastion)
        return auth


async def _serve(app: FastAPI, stack: list[Callable[[], Awaitable[None]]]) -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", server_header=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)

    async def stop() -> None:
        server.should_exit = True
        await task
        sock.close()

    stack.append(stop)
    return f"http://127.0.0.1:{port}"


ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(make_settings: SettingsFactory) -> AsyncIterator[ServerFactory]:
    """Start Bastion servers with given settings overrides (or a ready ``Settings``)."""
    stack: list[Callable[[], Awaitable[None]]] = []

    async def factory(
        settings: Settings | None = None, *, clock: Clock | None = None, **overrides: Any
    ) -> RunningServer:
        settings = settings or await make_settings(**overrides)
        app = create_app(settings, clock=clock)
        base_url = await _serve(app, stack)
        return RunningServer(app, base_url)

    yield factory
    for stop in reversed(stack):
        await stop()


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    """One Bastion server with test defaults."""
    return await start_server()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``server``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        yield http


# -- helpers ---------------------------------------------------------------------


class ManualClock:
    """A clock that moves only when told to (no patching of time)."""

    def __init__(self, start: float | None = None) -> None:
        self.current = time.time() if start is None else start

    def now(self) -> float:
        """The current fake time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move forward."""
        self.current += seconds


async def register(
    client: httpx.AsyncClient,
    username: str = "alice",
    *,
    email: str | None = None,
    age: int = 30,
    password: str = GOOD_PASSWORD,
) -> dict[str, Any]:
    """Register a user, asserting success; returns the user JSON."""
    response = await client.post(
        "/users",
        json={
            "username": username,
            "email": email or f"{username}@example.com",
            "age": age,
            "password": password,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, username: str = "alice", password: str = GOOD_PASSWORD
) -> dict[str, Any]:
    """Password grant, asserting success; returns the token response."""
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    """The Authorization header for a token response or an access token."""
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def make_admin(server: RunningServer, username: str = "root") -> dict[str, Any]:
    """Create an admin through the service layer (as ``bastion create-admin`` does)."""
    user = await server.bastion.container.user_service.register(
        username=username,
        email=f"{username}@example.com",
        age=40,
        password=GOOD_PASSWORD,
        permissions=("admin",),
    )
    return {"id": user.id, "username": user.username}


# -- one server per module and backend ---------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """One Bastion server per test module and backend, for tests that refuse
    input or use names of their own: a server per test costs ~0.3 s."""
    values: dict[str, Any] = {"data_dir": tmp_path_factory.mktemp("shared") / "data", **UNLIMITED}
    if request.param == "postgres":
        pg_server: PostgresServer = request.getfixturevalue("pg")
        values["database_url"] = await fresh_database(pg_server)
    stack: list[Callable[[], Awaitable[None]]] = []
    app = create_app(Settings(_env_file=None, **values))
    base_url = await _serve(app, stack)
    try:
        yield RunningServer(app, base_url)
    finally:
        for stop in reversed(stack):
            await stop()


@pytest.fixture
async def shared_client(shared_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``shared_server``."""
    async with httpx.AsyncClient(base_url=shared_server.base_url, timeout=30) as http:
        yield http
