"""Two instances on one PostgreSQL and one real Redis act as one service."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerFactory, SettingsFactory, bearer, login, register
from tests.servers import RedisServer


@pytest.fixture
def backend() -> str:
    """Shared state across instances needs the shared database."""
    return "postgres"


async def test_logout_on_one_instance_is_rejected_by_the_other_on_the_next_request(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    settings = await make_settings(redis_url=redis.url)
    first = await start_server(settings)
    second = await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        await register(a, "alice")
        tokens = await login(a, "alice")
        assert (await b.get("/protected", headers=bearer(tokens))).status_code == 200
        assert (await a.post("/auth/logout", headers=bearer(tokens))).status_code == 204
        response = await b.get("/protected", headers=bearer(tokens))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_permission_change_on_one_instance_revokes_on_the_other(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    from tests.conftest import make_admin

    settings = await make_settings(redis_url=redis.url)
    first = await start_server(settings)
    second = await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        user = await register(a, "alice")
        await make_admin(first)
        admin = await login(a, "root")
        tokens = await login(a, "alice")
        changed = await a.put(
            f"/users/{user['id']}/permissions",
            json={"permissions": ["reports:read"]},
            headers=bearer(admin),
        )
        assert changed.status_code == 200
        assert (await b.get("/protected", headers=bearer(tokens))).status_code == 401


async def test_rate_limits_are_shared_by_instances(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    settings = await make_settings(redis_url=redis.url, rate_limit="4/minute")
    first = await start_server(settings)
    second = await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        statuses = []
        for client in (a, b, a, b, a):
            statuses.append((await client.get("/openapi.json")).status_code)
    assert statuses == [200, 200, 200, 200, 429]


async def test_ready_reports_redis(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    server = await start_server(await make_settings(redis_url=redis.url))
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_unreachable_redis_fails_token_and_registration_closed(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    from tests.servers import free_port

    settings = await make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    server = await start_server(settings)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        token = await client.post(
            "/auth/token", data={"grant_type": "password", "username": "a", "password": "b"}
        )
        registration = await client.post("/users", json={})
        other = await client.get("/openapi.json")
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert token.status_code == 503
    assert int(token.headers["retry-after"]) >= 1
    assert registration.status_code == 503
    assert other.status_code == 200
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["redis"] == "unavailable"


async def test_login_throttling_is_shared_by_instances(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    settings = await make_settings(redis_url=redis.url)
    first = await start_server(settings)
    second = await start_server(settings)
    form = {"grant_type": "password", "username": "carol", "password": "wrong password here"}
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        await register(a, "carol")
        statuses = [
            (await client.post("/auth/token", data=form)).status_code for client in (a, b) * 3
        ]
    assert statuses == [400] * 5 + [429]
