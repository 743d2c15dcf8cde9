"""A login or refresh racing the deletion of its user answers ``invalid_grant``,
never 500 (issue 17 #14); database errors never carry bound parameters into
logs. The race is pinned at its worst point: the user is deleted right after
the grant has read it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bastion.bootstrap import build
from bastion.storage.migrate import upgrade_sqlite
from bastion.storage.protocols import Revocation, StoredUser
from bastion.storage.tables import users
from tests.conftest import (
    GOOD_PASSWORD,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    login,
    register,
)


def delete_after_reading(server: RunningServer, method: str) -> None:
    """Make the user store's ``method`` delete the user it has just read."""
    store = server.bastion.container.users
    original = getattr(store, method)

    async def read_then_delete(*args: Any) -> StoredUser | None:
        stored: StoredUser | None = await original(*args)
        if stored is not None:
            mark = Revocation(f"user:{stored.user.id}", 2**31 - 1, time.time() + 1000)
            assert await store.delete(stored.user.id, mark)
        return stored

    setattr(store, method, read_then_delete)


async def test_a_login_racing_the_deletion_of_its_user_is_invalid_grant(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        delete_after_reading(server, "get_by_username")
        raced = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": GOOD_PASSWORD},
        )
        unknown = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "nobody", "password": GOOD_PASSWORD},
        )
    assert raced.status_code == 400, raced.text
    assert raced.json() == unknown.json()
    assert raced.json()["error"] == "invalid_grant"


async def test_a_refresh_racing_the_deletion_of_its_user_is_invalid_grant(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        delete_after_reading(server, "get")
        raced = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    assert raced.status_code == 400, raced.text
    assert raced.json()["error"] == "invalid_grant"


async def test_database_errors_do_not_carry_bound_parameters(
    make_settings: SettingsFactory,
) -> None:
    settings = await make_settings()
    container = build(settings)
    secret = "$argon2id$v=19$m=19456,t=2,p=1$a-secret-hash"
    row = {
        "username": "alice",
        "username_key": "alice",
        "email": "alice.private@example.com",
        "email_key": "alice.private@example.com",
        "age": 30,
        "password_hash": secret,
        "created_at": 0.0,
    }
    try:
        if settings.is_sqlite:
            await upgrade_sqlite(container.engine)
        async with container.engine.begin() as conn:
            await conn.execute(insert(users).values(row))
        with pytest.raises(IntegrityError) as caught:
            async with container.engine.begin() as conn:
                await conn.execute(insert(users).values(row))
    finally:
        await container.stop()
    text = str(caught.value)
    assert "a-secret-hash" not in text
    assert "alice.private" not in text
