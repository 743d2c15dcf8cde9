"""Ending sessions: logout, password change, permission change, deletion.

SPEC: revocation takes effect at once, on every instance, and survives a
restart; a password change keeps the calling session and ends all others.

Most tests share one server per backend: each registers its own users and
ends only their sessions. Tests of several instances or of a restart start
their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion import Settings, create_app
from bastion.storage.protocols import EventQuery
from bastion.types import Clock
from tests.conftest import (
    GOOD_PASSWORD,
    UNLIMITED,
    ManualClock,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    _serve,
    bearer,
    fresh_database,
    login,
    make_admin,
    register,
)

NEW_PASSWORD = "a brand new passphrase of mine"


def unique_name() -> str:
    """A username no other test uses."""
    return "u_" + uuid.uuid4().hex[:12]


def claims_of(token: str) -> dict[str, Any]:
    """The claims of ``token``, unverified."""
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return claims


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    """One refresh-token grant."""
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def status_of(client: httpx.AsyncClient, tokens: dict[str, Any] | str) -> int:
    """The status of ``GET /protected`` with ``tokens``' access token."""
    return (await client.get("/protected", headers=bearer(tokens))).status_code


async def assert_rejected(client: httpx.AsyncClient, tokens: dict[str, Any] | str) -> None:
    """The access token is refused as invalid (RFC 6750 §3.1)."""
    response = await client.get("/protected", headers=bearer(tokens))
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def assert_invalid_grant(response: httpx.Response) -> None:
    """An RFC 6749 §5.2 ``invalid_grant`` answer."""
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


async def try_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """A password grant, whatever its outcome."""
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def change_password(
    client: httpx.AsyncClient, tokens: dict[str, Any], current: str, new: str
) -> httpx.Response:
    """``POST /users/me/password``."""
    return await client.post(
        "/users/me/password",
        headers=bearer(tokens),
        json={"current_password": current, "new_password": new},
    )


async def set_permissions(
    client: httpx.AsyncClient, admin: dict[str, Any], user_id: int, permissions: list[str]
) -> None:
    """``PUT /users/{id}/permissions`` as ``admin``, asserting success."""
    response = await client.put(
        f"/users/{user_id}/permissions", headers=bearer(admin), json={"permissions": permissions}
    )
    assert response.status_code == 200, response.text


async def eventually_rejected(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    """Wait (a few seconds at most) until another instance refuses the token."""
    deadline = time.monotonic() + 10
    while await status_of(client, tokens) == 200:
        assert time.monotonic() < deadline, "the revocation never reached the other instance"
        await asyncio.sleep(0.05)
    await assert_rejected(client, tokens)


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    """Run one instance on ``settings`` for the block, then stop it (a restart's half)."""
    stack: list[Callable[[], Awaitable[None]]] = []
    app = create_app(settings, clock=clock)
    base_url = await _serve(app, stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield RunningServer(app, base_url), http
    finally:
        for stop in reversed(stack):
            await stop()


@dataclass
class Instance:
    """A running server shared by the tests of this module, and a client of it."""

    server: RunningServer
    http: httpx.AsyncClient

    async def user(self) -> dict[str, Any]:
        """A newly registered user."""
        return await register(self.http, unique_name())

    async def signed_in(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new user and the token response of its first login."""
        user = await self.user()
        return user, await login(self.http, user["username"])

    async def admin(self) -> dict[str, Any]:
        """The token response of a new admin."""
        name = unique_name()
        await make_admin(self.server, name)
        return await login(self.http, name)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Instance]:
    """One server per backend for the tests that need no instance of their own."""
    values: dict[str, Any] = {"data_dir": tmp_path_factory.mktemp("sessions") / "data", **UNLIMITED}
    if request.param == "postgres":
        values["database_url"] = await fresh_database(request.getfixturevalue("pg"))
    async with serving(Settings(_env_file=None, **values)) as (server, http):
        yield Instance(server, http)


# -- logout ---------------------------------------------------------------------------


async def test_logout_is_204_and_ends_the_access_token(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert await status_of(shared.http, tokens) == 200
    response = await shared.http.post("/auth/logout", headers=bearer(tokens))
    assert response.status_code == 204
    await assert_rejected(shared.http, tokens)


async def test_logout_ends_the_refresh_token(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert (await shared.http.post("/auth/logout", headers=bearer(tokens))).status_code == 204
    assert_invalid_grant(await refresh(shared.http, tokens["refresh_token"]))


async def test_logout_ends_every_token_of_the_session(shared: Instance) -> None:
    _, first = await shared.signed_in()
    second = (await refresh(shared.http, first["refresh_token"])).json()
    assert (await shared.http.post("/auth/logout", headers=bearer(second))).status_code == 204
    await assert_rejected(shared.http, first)
    assert_invalid_grant(await refresh(shared.http, first["refresh_token"]))
    assert_invalid_grant(await refresh(shared.http, second["refresh_token"]))


async def test_logout_spares_the_users_other_sessions(shared: Instance) -> None:
    user, ended = await shared.signed_in()
    other = await login(shared.http, user["username"])
    assert (await shared.http.post("/auth/logout", headers=bearer(ended))).status_code == 204
    assert await status_of(shared.http, other) == 200
    assert (await refresh(shared.http, other["refresh_token"])).status_code == 200


async def test_logout_spares_other_users(shared: Instance) -> None:
    _, mine = await shared.signed_in()
    _, theirs = await shared.signed_in()
    assert (await shared.http.post("/auth/logout", headers=bearer(mine))).status_code == 204
    assert await status_of(shared.http, theirs) == 200


async def test_logout_needs_a_token(shared: Instance) -> None:
    response = await shared.http.post("/auth/logout")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_logout_twice_is_401(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert (await shared.http.post("/auth/logout", headers=bearer(tokens))).status_code == 204
    assert (await shared.http.post("/auth/logout", headers=bearer(tokens))).status_code == 401


async def test_logout_is_a_security_event(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    assert (await shared.http.post("/auth/logout", headers=bearer(tokens))).status_code == 204
    events = await shared.server.bastion.container.events.query(
        EventQuery(type="authn_token_revoked", user_id=user["id"])
    )
    assert len(events) == 1


async def test_logout_reaches_another_instance(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    settings = await make_settings()
    first, second = await start_server(settings), await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
    ):
        await register(a)
        tokens = await login(a)
        assert await status_of(b, tokens) == 200
        assert (await a.post("/auth/logout", headers=bearer(tokens))).status_code == 204
        await eventually_rejected(b, tokens)


# -- password change ----------------------------------------------------------------------


async def test_password_change_is_204_and_keeps_the_calling_session(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    response = await change_password(shared.http, tokens, GOOD_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204, response.text
    assert await status_of(shared.http, tokens) == 200
    assert (await refresh(shared.http, tokens["refresh_token"])).status_code == 200


async def test_password_change_ends_the_other_sessions_access_tokens(shared: Instance) -> None:
    user, other = await shared.signed_in()
    mine = await login(shared.http, user["username"])
    response = await change_password(shared.http, mine, GOOD_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204
    await assert_rejected(shared.http, other)


async def test_password_change_ends_the_other_sessions_refresh_tokens(shared: Instance) -> None:
    user, other = await shared.signed_in()
    mine = await login(shared.http, user["username"])
    response = await change_password(shared.http, mine, GOOD_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204
    assert_invalid_grant(await refresh(shared.http, other["refresh_token"]))


async def test_password_change_replaces_the_password(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    response = await change_password(shared.http, tokens, GOOD_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204
    assert_invalid_grant(await try_login(shared.http, user["username"], GOOD_PASSWORD))
    assert (await try_login(shared.http, user["username"], NEW_PASSWORD)).status_code == 200


async def test_password_change_with_a_wrong_current_password_is_400_and_changes_nothing(
    shared: Instance,
) -> None:
    user, other = await shared.signed_in()
    mine = await login(shared.http, user["username"])
    response = await change_password(shared.http, mine, "not the current password", NEW_PASSWORD)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "wrong_password"
    assert await status_of(shared.http, other) == 200
    assert (await try_login(shared.http, user["username"], GOOD_PASSWORD)).status_code == 200


async def test_password_change_to_a_weak_password_is_422_and_changes_nothing(
    shared: Instance,
) -> None:
    user, other = await shared.signed_in()
    mine = await login(shared.http, user["username"])
    response = await change_password(shared.http, mine, GOOD_PASSWORD, "Xq7!tiny")
    assert response.status_code == 422, response.text
    assert "Xq7!tiny" not in response.text
    assert await status_of(shared.http, other) == 200
    assert (await try_login(shared.http, user["username"], GOOD_PASSWORD)).status_code == 200


async def test_password_change_needs_a_token(shared: Instance) -> None:
    response = await shared.http.post(
        "/users/me/password",
        json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 401


# -- permission change ------------------------------------------------------------------


async def test_permission_change_ends_the_users_access_tokens(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    await set_permissions(shared.http, await shared.admin(), user["id"], ["reports:read"])
    await assert_rejected(shared.http, tokens)


async def test_login_after_a_permission_change_carries_the_new_permissions_at_once(
    shared: Instance,
) -> None:
    user, _ = await shared.signed_in()
    await set_permissions(shared.http, await shared.admin(), user["id"], ["admin"])
    # In the same second as the change: nothing may hinge on iat > the change time.
    tokens = await login(shared.http, user["username"])
    assert claims_of(tokens["access_token"])["permissions"] == ["admin"]
    assert await status_of(shared.http, tokens) == 200
    response = await shared.http.get("/events", headers=bearer(tokens))
    assert response.status_code == 200, response.text


async def test_permission_change_spares_the_admin_and_other_users(shared: Instance) -> None:
    user, _ = await shared.signed_in()
    _, bystander = await shared.signed_in()
    admin = await shared.admin()
    await set_permissions(shared.http, admin, user["id"], ["reports:read"])
    assert await status_of(shared.http, admin) == 200
    assert await status_of(shared.http, bystander) == 200


async def test_refresh_after_a_demotion_never_yields_the_old_permissions(
    shared: Instance,
) -> None:
    demoted = await shared.admin()
    demoted_id = (await shared.http.get("/users/me", headers=bearer(demoted))).json()["id"]
    await set_permissions(shared.http, await shared.admin(), demoted_id, [])
    response = await refresh(shared.http, demoted["refresh_token"])
    if response.status_code == 200:
        events = await shared.http.get("/events", headers=bearer(response.json()))
        assert events.status_code == 403
    else:
        assert_invalid_grant(response)


async def test_permission_change_reaches_another_instance(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    settings = await make_settings()
    first, second = await start_server(settings), await start_server(settings)
    await make_admin(first)
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
    ):
        user = await register(a)
        tokens = await login(b)
        admin = await login(a, "root")
        await set_permissions(a, admin, user["id"], ["reports:read"])
        await eventually_rejected(b, tokens)


# -- deletion -----------------------------------------------------------------------------


async def test_deleted_users_access_tokens_are_refused(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    other = await login(shared.http, user["username"])
    response = await shared.http.delete(f"/users/{user['id']}", headers=bearer(tokens))
    assert response.status_code == 204
    await assert_rejected(shared.http, tokens)
    await assert_rejected(shared.http, other)


async def test_deleted_users_refresh_tokens_are_invalid_grant(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    response = await shared.http.delete(f"/users/{user['id']}", headers=bearer(tokens))
    assert response.status_code == 204
    assert_invalid_grant(await refresh(shared.http, tokens["refresh_token"]))


async def test_user_deleted_by_an_admin_loses_its_tokens(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    admin = await shared.admin()
    response = await shared.http.delete(f"/users/{user['id']}", headers=bearer(admin))
    assert response.status_code == 204
    await assert_rejected(shared.http, tokens)
    assert_invalid_grant(await refresh(shared.http, tokens["refresh_token"]))


async def test_user_registered_after_a_deletion_can_use_its_tokens(shared: Instance) -> None:
    """A deleted id's revocation must not fall on the next account (ids are not reused)."""
    user, tokens = await shared.signed_in()
    response = await shared.http.delete(f"/users/{user['id']}", headers=bearer(tokens))
    assert response.status_code == 204
    newcomer, fresh = await shared.signed_in()
    assert newcomer["id"] != user["id"]
    assert await status_of(shared.http, fresh) == 200


# -- durability across a restart ------------------------------------------------------------


async def test_logout_survives_a_restart(make_settings: SettingsFactory) -> None:
    settings = await make_settings()
    async with serving(settings) as (_, before):
        await register(before)
        ended = await login(before)
        live = await login(before)
        assert (await before.post("/auth/logout", headers=bearer(ended))).status_code == 204
    async with serving(settings) as (_, after):
        await assert_rejected(after, ended)
        assert_invalid_grant(await refresh(after, ended["refresh_token"]))
        assert await status_of(after, live) == 200
        assert (await refresh(after, live["refresh_token"])).status_code == 200


async def test_permission_change_survives_a_restart(make_settings: SettingsFactory) -> None:
    settings = await make_settings()
    async with serving(settings) as (server, before):
        user = await register(before)
        tokens = await login(before)
        await make_admin(server)
        admin = await login(before, "root")
        await set_permissions(before, admin, user["id"], ["reports:read"])
    async with serving(settings) as (_, after):
        await assert_rejected(after, tokens)
        assert await status_of(after, admin) == 200


async def test_deletion_survives_a_restart(make_settings: SettingsFactory) -> None:
    settings = await make_settings()
    async with serving(settings) as (_, before):
        user = await register(before)
        tokens = await login(before)
        response = await before.delete(f"/users/{user['id']}", headers=bearer(tokens))
        assert response.status_code == 204
    async with serving(settings) as (_, after):
        await assert_rejected(after, tokens)


async def test_logout_outlasts_the_tokens_expiry_leeway(make_settings: SettingsFactory) -> None:
    """A logged-out token stays dead through the 5 s of leeway its expiry is given."""
    settings = await make_settings()
    clock = ManualClock()
    async with serving(settings, clock) as (_, before):
        await register(before)
        tokens = await login(before)
        assert (await before.post("/auth/logout", headers=bearer(tokens))).status_code == 204
    clock.advance(900 + 2)  # past exp, but within the verification leeway
    async with serving(settings, clock) as (_, after):
        await assert_rejected(after, tokens)


async def test_permission_change_outlasts_the_tokens_expiry_leeway(
    make_settings: SettingsFactory,
) -> None:
    settings = await make_settings()
    clock = ManualClock()
    async with serving(settings, clock) as (server, before):
        user = await register(before)
        tokens = await login(before)
        await make_admin(server)
        admin = await login(before, "root")
        await set_permissions(before, admin, user["id"], ["reports:read"])
    clock.advance(900 + 2)
    async with serving(settings, clock) as (_, after):
        await assert_rejected(after, tokens)
