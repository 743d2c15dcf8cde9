"""``/users/me``, ``/users/{id}``, permissions and deletion over HTTP.

The tests share one server per backend and create users with names of their own.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, bearer, login, make_admin, register

_names = itertools.count()
USER_FIELDS = {"id", "username", "email", "email_verified", "age", "permissions", "created_at"}


async def new_member(client: httpx.AsyncClient, prefix: str = "member") -> tuple[int, str, str]:
    """Register and log in a fresh user: (id, username, access token)."""
    username = f"{prefix}{next(_names)}"
    user = await register(client, username)
    tokens = await login(client, username)
    return int(user["id"]), username, str(tokens["access_token"])


async def new_admin(server: RunningServer, client: httpx.AsyncClient) -> tuple[int, str]:
    """A fresh admin: (id, access token)."""
    admin = await make_admin(server, f"admin{next(_names)}")
    tokens = await login(client, admin["username"])
    return int(admin["id"]), str(tokens["access_token"])


async def grant(
    client: httpx.AsyncClient, admin_token: str, user_id: int, permissions: list[str]
) -> httpx.Response:
    """``PUT /users/{id}/permissions`` as ``admin_token``."""
    return await client.put(
        f"/users/{user_id}/permissions",
        json={"permissions": permissions},
        headers=bearer(admin_token),
    )


@pytest.fixture(scope="module")
async def admin_token(shared_server: RunningServer) -> str:
    """An admin's access token, shared by the module's tests on one server."""
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        return (await new_admin(shared_server, http))[1]


@pytest.fixture(scope="module")
async def member_token(shared_server: RunningServer) -> str:
    """A plain member's token for tests that change nothing about the member."""
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        return (await new_member(http, "plain"))[2]


def assert_bearer_challenge(response: httpx.Response, *, invalid_token: bool) -> None:
    """A 401 with an RFC 6750 ``WWW-Authenticate: Bearer`` challenge."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is invalid_token


# -- GET /users/me -------------------------------------------------------------------


async def test_me_returns_the_caller_with_email(shared_client: httpx.AsyncClient) -> None:
    user_id, username, token = await new_member(shared_client)
    response = await shared_client.get("/users/me", headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user_id
    assert body["username"] == username
    assert body["email"] == f"{username}@example.com"
    assert body["permissions"] == []


async def test_user_json_has_exactly_the_public_fields(shared_client: httpx.AsyncClient) -> None:
    _, _, token = await new_member(shared_client)
    body = (await shared_client.get("/users/me", headers=bearer(token))).json()
    assert set(body) == USER_FIELDS
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None


async def test_me_without_token_is_401_with_bearer_challenge(
    shared_client: httpx.AsyncClient,
) -> None:
    response = await shared_client.get("/users/me")
    assert_bearer_challenge(response, invalid_token=False)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("a.b.c", id="three-dots"),
        pytest.param(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLW5vdC12YWxpZA",
            id="forged-signature",
        ),
    ],
)
async def test_me_with_bad_token_is_401_invalid_token(
    shared_client: httpx.AsyncClient, token: str
) -> None:
    response = await shared_client.get("/users/me", headers=bearer(token))
    assert_bearer_challenge(response, invalid_token=True)


# -- GET /users/{id} -----------------------------------------------------------------


async def test_get_user_by_another_member_hides_email(
    shared_client: httpx.AsyncClient, member_token: str
) -> None:
    target, username, _ = await new_member(shared_client)
    response = await shared_client.get(f"/users/{target}", headers=bearer(member_token))
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == username
    assert "email" not in body


async def test_get_user_by_themself_shows_email(shared_client: httpx.AsyncClient) -> None:
    user_id, username, token = await new_member(shared_client)
    response = await shared_client.get(f"/users/{user_id}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["email"] == f"{username}@example.com"


async def test_get_user_by_admin_shows_email(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    target, username, _ = await new_member(shared_client)
    response = await shared_client.get(f"/users/{target}", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.json()["email"] == f"{username}@example.com"


async def test_get_user_by_users_read_holder_shows_email(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    target, username, _ = await new_member(shared_client)
    reader, reader_name, _ = await new_member(shared_client)
    assert (await grant(shared_client, admin_token, reader, ["users:read"])).status_code == 200
    token = (await login(shared_client, reader_name))["access_token"]
    response = await shared_client.get(f"/users/{target}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["email"] == f"{username}@example.com"


async def test_get_unknown_user_is_404(shared_client: httpx.AsyncClient, member_token: str) -> None:
    response = await shared_client.get("/users/987654321", headers=bearer(member_token))
    assert response.status_code == 404


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "1.5", str(2**63), "9" * 40])
async def test_get_user_with_malformed_id_is_422(
    shared_client: httpx.AsyncClient, member_token: str, user_id: str
) -> None:
    response = await shared_client.get(f"/users/{user_id}", headers=bearer(member_token))
    assert response.status_code == 422


async def test_get_user_without_token_is_401(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/users/1")
    assert_bearer_challenge(response, invalid_token=False)


# -- PUT /users/{id}/permissions -----------------------------------------------------


async def test_admin_sets_permissions_and_gets_the_user_back(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    target, username, _ = await new_member(shared_client)
    response = await grant(
        shared_client, admin_token, target, ["reports:read", "users:read", "reports:read"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == target
    assert body["username"] == username
    assert body["permissions"] == ["reports:read", "users:read"]
    me = await login(shared_client, username)
    assert (await shared_client.get("/users/me", headers=bearer(me))).json()["permissions"] == [
        "reports:read",
        "users:read",
    ]


async def test_permission_change_ends_the_users_existing_tokens(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    target, _, token = await new_member(shared_client)
    assert (await grant(shared_client, admin_token, target, ["reports:read"])).status_code == 200
    response = await shared_client.get("/users/me", headers=bearer(token))
    assert_bearer_challenge(response, invalid_token=True)


async def test_non_admin_setting_permissions_is_403(shared_client: httpx.AsyncClient) -> None:
    user_id, _, token = await new_member(shared_client)
    response = await grant(shared_client, token, user_id, ["admin"])
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    me = await shared_client.get("/users/me", headers=bearer(token))
    assert me.json()["permissions"] == []


async def test_setting_permissions_without_token_is_401(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.put("/users/1/permissions", json={"permissions": []})
    assert_bearer_challenge(response, invalid_token=False)


async def test_setting_permissions_of_unknown_user_is_404(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await grant(shared_client, admin_token, 987654321, ["reports:read"])
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"permissions": "admin"}, id="string"),
        pytest.param({"permissions": [1]}, id="number-item"),
        pytest.param({"permissions": ["has space"]}, id="space"),
        pytest.param({"permissions": [""]}, id="empty-name"),
        pytest.param({"permissions": ["x" * 65]}, id="long-name"),
        pytest.param({"permissions": ["p"] * 101}, id="too-many"),
        pytest.param({"permissions": None}, id="null"),
        pytest.param({}, id="missing"),
        pytest.param({"permissions": [], "note": "x"}, id="extra-field"),
        pytest.param(["admin"], id="bare-list"),
    ],
)
async def test_setting_permissions_with_bad_body_is_422(
    shared_client: httpx.AsyncClient, admin_token: str, body: Any
) -> None:
    target = (await shared_client.get("/users/me", headers=bearer(admin_token))).json()["id"]
    response = await shared_client.put(
        f"/users/{target}/permissions", json=body, headers=bearer(admin_token)
    )
    assert response.status_code == 422, response.text


# -- DELETE /users/{id} --------------------------------------------------------------


async def test_user_deletes_themself(shared_client: httpx.AsyncClient) -> None:
    user_id, username, token = await new_member(shared_client)
    response = await shared_client.delete(f"/users/{user_id}", headers=bearer(token))
    assert response.status_code == 204
    assert response.content == b""
    refused = await shared_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": "x" * 20},
    )
    assert refused.status_code == 400
    assert (await shared_client.get("/users/me", headers=bearer(token))).status_code == 401


async def test_member_deleting_another_user_is_403(
    shared_client: httpx.AsyncClient, member_token: str
) -> None:
    target, _, target_token = await new_member(shared_client)
    response = await shared_client.delete(f"/users/{target}", headers=bearer(member_token))
    assert response.status_code == 403
    assert (await shared_client.get("/users/me", headers=bearer(target_token))).status_code == 200


async def test_member_deleting_an_unknown_id_is_403_not_404(
    shared_client: httpx.AsyncClient, member_token: str
) -> None:
    response = await shared_client.delete("/users/987654321", headers=bearer(member_token))
    assert response.status_code == 403


async def test_admin_deletes_another_user(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    target, _, _ = await new_member(shared_client)
    response = await shared_client.delete(f"/users/{target}", headers=bearer(admin_token))
    assert response.status_code == 204
    gone = await shared_client.get(f"/users/{target}", headers=bearer(admin_token))
    assert gone.status_code == 404


async def test_admin_deleting_unknown_user_is_404(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.delete("/users/987654321", headers=bearer(admin_token))
    assert response.status_code == 404


async def test_delete_without_token_is_401(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.delete("/users/1")
    assert_bearer_challenge(response, invalid_token=False)
