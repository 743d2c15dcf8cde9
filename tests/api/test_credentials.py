"""Credential versions (issue 17 #5, #11): a login or refresh that read the
user before a change of permissions, password or existence cannot finish with
what it read, and version floors last as long as the user.

Each race is reproduced exactly: the login's seam between "password verified"
and "session opened" (``AuthService._after_password_verified``) makes the
change at that moment, over HTTP, from another session.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from bastion.storage.protocols import StoredUser
from bastion.types import Principal, RequestContext
from tests.conftest import (
    GOOD_PASSWORD,
    ManualClock,
    RunningServer,
    ServerFactory,
    bearer,
    login,
    make_admin,
    register,
)

_names = itertools.count()
NEW_PASSWORD = "another long passphrase here"


def unique_name(prefix: str = "cred") -> str:
    """A username no other test uses."""
    return f"{prefix}{next(_names)}"


def claims_of(token: str) -> dict[str, Any]:
    """The claims of an access token, read without verifying (the test only
    reads them; the server verified the token it issued)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def meanwhile(
    server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[], Awaitable[None]],
) -> None:
    """Run ``change`` once, inside the next login, after its password was
    verified and before its session opens."""
    done = False

    async def seam(_stored: StoredUser, *, context: RequestContext | None) -> None:
        nonlocal done
        if not done:
            done = True
            await change()

    service = server.bastion.container.auth_service
    monkeypatch.setattr(service, "_after_password_verified", seam)


async def token_form(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """A password grant."""
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def test_a_login_that_read_the_user_before_a_demotion_signs_the_new_permissions(
    server: RunningServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await make_admin(server, unique_name("boss"))
    boss_tokens = await login(client, boss["username"])
    victim = await make_admin(server, unique_name("demoted"))

    async def demote() -> None:
        response = await client.put(
            f"/users/{victim['id']}/permissions",
            json={"permissions": []},
            headers=bearer(boss_tokens),
        )
        assert response.status_code == 200

    meanwhile(server, monkeypatch, demote)
    response = await token_form(client, victim["username"], GOOD_PASSWORD)
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["permissions"] == []
    events = await client.get("/events", headers=bearer(response.json()["access_token"]))
    assert events.status_code == 403


async def test_a_login_that_verified_the_old_password_cannot_open_a_session_after_a_change(
    server: RunningServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name()
    await register(client, name)
    owner = await login(client, name)

    async def change_password() -> None:
        response = await client.post(
            "/users/me/password",
            json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(owner),
        )
        assert response.status_code == 204

    meanwhile(server, monkeypatch, change_password)
    response = await token_form(client, name, GOOD_PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await token_form(client, name, NEW_PASSWORD)).status_code == 200


async def test_a_login_racing_the_deletion_of_its_account_is_invalid_grant(
    server: RunningServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name()
    await register(client, name)
    owner = await login(client, name)

    async def delete_account() -> None:
        user_id = claims_of(owner["access_token"])["sub"]
        response = await client.delete(f"/users/{user_id}", headers=bearer(owner))
        assert response.status_code == 204

    meanwhile(server, monkeypatch, delete_account)
    response = await token_form(client, name, GOOD_PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_token_signed_late_from_a_read_before_a_demotion_stays_refused(
    start_server: ServerFactory,
) -> None:
    """The version floor outlives access TTL + leeway: it lasts as long as the user."""
    clock = ManualClock()
    server = await start_server(clock=clock, access_token_ttl=60)
    container = server.bastion.container
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        boss = await make_admin(server, unique_name("boss"))
        victim = await make_admin(server, unique_name("late"))
        before = await container.users.get(victim["id"])
        assert before is not None
        actor = Principal(user_id=boss["id"], session_id="s", token_id="t")
        await container.user_service.set_permissions(victim["id"], (), actor=actor)
        clock.advance(600)
        await container.sync_revocations()
        late = container.codec.issue(
            user_id=victim["id"],
            session_id="late-session",
            permissions=before.user.permissions,
            version=before.token_version,
        )
        response = await client.get("/protected", headers=bearer(late))
    assert response.status_code == 401


async def test_a_refresh_after_a_demotion_signs_the_new_permissions(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    boss = await make_admin(server, unique_name("boss"))
    boss_tokens = await login(client, boss["username"])
    victim = await make_admin(server, unique_name("refreshed"))
    tokens = await login(client, victim["username"])
    demoted = await client.put(
        f"/users/{victim['id']}/permissions",
        json={"permissions": ["reports:read"]},
        headers=bearer(boss_tokens),
    )
    assert demoted.status_code == 200
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200
    assert claims_of(refreshed.json()["access_token"])["permissions"] == ["reports:read"]


async def test_a_password_change_bumps_the_credential_version_and_keeps_the_caller(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    name = unique_name()
    user = await register(client, name)
    caller = await login(client, name)
    other = await login(client, name)
    users = server.bastion.container.users
    before = await users.get(user["id"])
    response = await client.post(
        "/users/me/password",
        json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(caller),
    )
    assert response.status_code == 204
    after = await users.get(user["id"])
    assert before is not None
    assert after is not None
    assert after.credential_version == before.credential_version + 1
    assert (await client.get("/users/me", headers=bearer(caller))).status_code == 200
    assert (await client.get("/users/me", headers=bearer(other))).status_code == 401


async def test_unknown_names_cost_the_scheme_most_stored_hashes_use(
    make_settings: Callable[..., Awaitable[Any]], start_server: ServerFactory
) -> None:
    """Issue 17 #11: after BASTION_PASSWORD_HASHER changes, the dummy hash of
    unknown users keeps the scheme of most accounts (the dormant ones)."""
    settings = await make_settings(password_hasher="bcrypt")
    first = await start_server(settings)
    async with httpx.AsyncClient(base_url=first.base_url) as client:
        for _ in range(2):
            await register(client, unique_name("bc"))
    assert first.bastion.container.passwords.dummy_scheme == "bcrypt"
    switched = await start_server(settings.model_copy(update={"password_hasher": "argon2"}))
    assert switched.bastion.container.passwords.dummy_scheme == "bcrypt"


async def test_the_session_store_refuses_a_stale_credential_version(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    """The check itself, on the real store: a session opened or refreshed with
    the version read before a change is refused, and nothing is stored."""
    from bastion.storage.sql_sessions import SqlSessionStore

    container = server.bastion.container
    sessions = SqlSessionStore(container.engine)
    name = unique_name()
    user = await register(client, name)
    before = await container.users.get(user["id"])
    assert before is not None
    tokens = await login(client, name)
    assert await container.users.bump_credential_version(user["id"]) == (
        before.credential_version + 1
    )
    now = container.clock.now()
    opened = await sessions.create(
        session_id="stale-session",
        user_id=user["id"],
        credential_version=before.credential_version,
        digest="0" * 64,
        now=now,
        expires_at=now + 60,
    )
    sid = claims_of(tokens["access_token"])["sid"]
    added = await sessions.add_token(
        session_id=sid,
        user_id=user["id"],
        credential_version=before.credential_version,
        digest="1" * 64,
        now=now,
        expires_at=now + 60,
    )
    assert opened is False
    assert added == "stale"
    assert await sessions.find("1" * 64) is None
    assert sid in await sessions.active_sessions(user["id"], now=now)
    assert "stale-session" not in await sessions.active_sessions(user["id"], now=now)
