"""The session list over HTTP (SPEC "Sessions")."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, bearer, login, make_admin, register


async def _login_as(
    client: httpx.AsyncClient, agent: str, username: str = "alice"
) -> dict[str, object]:
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": "correct horse battery staple",
        },
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_sessions_are_listed_newest_first_with_client_and_amr(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    older = await _login_as(client, "Firefox/1")
    newer = await _login_as(client, "Chromium/2")
    response = await client.get("/users/me/sessions", headers=bearer(newer))
    assert response.status_code == 200
    sessions = response.json()
    assert [s["user_agent"] for s in sessions] == ["Chromium/2", "Firefox/1"]
    assert [s["current"] for s in sessions] == [True, False]
    for session in sessions:
        assert set(session) == {
            "id",
            "current",
            "created_at",
            "last_used_at",
            "ip",
            "user_agent",
            "amr",
        }
        assert session["ip"] == "127.0.0.1"
        assert session["amr"] == ["pwd"]
        assert session["last_used_at"] == session["created_at"]
    assert older["refresh_token"]


async def test_refresh_records_last_use_and_client(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    tokens = await _login_as(client, "Firefox/1")
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers={"User-Agent": "Firefox/2"},
    )
    sessions = (await client.get("/users/me/sessions", headers=bearer(refreshed.json()))).json()
    assert len(sessions) == 1
    assert sessions[0]["user_agent"] == "Firefox/2"
    assert sessions[0]["last_used_at"] >= sessions[0]["created_at"]


async def test_deleting_a_session_ends_its_tokens_at_once(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    other = await login(client, "alice")
    mine = await login(client, "alice")
    sessions = (await client.get("/users/me/sessions", headers=bearer(mine))).json()
    target = next(s["id"] for s in sessions if not s["current"])
    response = await client.delete(f"/users/me/sessions/{target}", headers=bearer(mine))
    assert response.status_code == 204
    assert (await client.get("/protected", headers=bearer(other))).status_code == 401
    refresh = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": other["refresh_token"]}
    )
    assert refresh.status_code == 400
    remaining = (await client.get("/users/me/sessions", headers=bearer(mine))).json()
    assert [s["current"] for s in remaining] == [True]


async def test_deleting_the_current_session_is_a_logout(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    sid = (await client.get("/users/me/sessions", headers=bearer(tokens))).json()[0]["id"]
    assert (
        await client.delete(f"/users/me/sessions/{sid}", headers=bearer(tokens))
    ).status_code == 204
    assert (await client.get("/protected", headers=bearer(tokens))).status_code == 401


async def test_another_users_session_is_404(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    await register(client, "bob")
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    bob_sid = (await client.get("/users/me/sessions", headers=bearer(bob))).json()[0]["id"]
    response = await client.delete(f"/users/me/sessions/{bob_sid}", headers=bearer(alice))
    assert response.status_code == 404
    assert (await client.get("/protected", headers=bearer(bob))).status_code == 200
    assert (
        await client.delete("/users/me/sessions/nope", headers=bearer(alice))
    ).status_code == 404


async def test_admin_lists_and_ends_every_session_of_a_user(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    user = await register(client, "alice")
    tokens = [await login(client, "alice") for _ in range(2)]
    await make_admin(server)
    admin = await login(client, "root")
    listed = await client.get(f"/users/{user['id']}/sessions", headers=bearer(admin))
    assert listed.status_code == 200
    assert len(listed.json()) == 2
    assert (
        await client.get(f"/users/{user['id']}/sessions", headers=bearer(tokens[0]))
    ).status_code == 403
    assert (
        await client.delete(f"/users/{user['id']}/sessions", headers=bearer(admin))
    ).status_code == 204
    for pair in tokens:
        assert (await client.get("/protected", headers=bearer(pair))).status_code == 401
    assert (await client.get(f"/users/{user['id']}/sessions", headers=bearer(admin))).json() == []
    assert (await client.get("/users/999999/sessions", headers=bearer(admin))).status_code == 404
    assert (await client.delete("/users/999999/sessions", headers=bearer(admin))).status_code == 404
