"""A user's permissions are bounded so that their access token always verifies.

Issue 17 #13: 100 permissions of 64 characters made a 9,262-byte token, over
the 8 KiB verify limit, so every request of that user was 401. The schema now
allows at most 50 names of at most 64 characters (``api/schemas.py``), and
issuer and audience at most 255 characters each (``config.py``); the worst
case of all of them together still verifies, under the largest signature.
"""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
import pytest

from bastion import Settings
from bastion.api.schemas import MAX_PERMISSION_LENGTH, MAX_PERMISSIONS
from bastion.security.tokens import MAX_TOKEN_BYTES
from tests.conftest import ServerFactory, bearer, login, make_admin, register


def worst_case_permissions() -> list[str]:
    """The most permission text the schema admits: 50 distinct 64-character names."""
    return [f"{index:02d}:" + "x" * (MAX_PERMISSION_LENGTH - 3) for index in range(MAX_PERMISSIONS)]


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
async def test_the_largest_permission_set_still_gives_a_working_token(
    start_server: ServerFactory, algorithm: str
) -> None:
    longest = "i" * 255
    server = await start_server(jwt_algorithm=algorithm, issuer=longest, audience=longest)
    admin = await make_admin(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        admin_token = (await login(http, admin["username"]))["access_token"]
        member = await register(http, "wide_user")
        permissions = worst_case_permissions()
        answer = await http.put(
            f"/users/{member['id']}/permissions",
            json={"permissions": permissions},
            headers=bearer(admin_token),
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["permissions"]) == MAX_PERMISSIONS
        tokens = await login(http, "wide_user")
        me = await http.get("/users/me", headers=bearer(tokens))
        refreshed = await http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        again = await http.get("/protected", headers=bearer(refreshed.json()["access_token"]))
    assert len(tokens["access_token"]) < MAX_TOKEN_BYTES
    # Room is left for claims other features add (amr, auth_time).
    assert len(tokens["access_token"]) < MAX_TOKEN_BYTES - 1536
    assert me.status_code == 200, me.text
    assert sorted(me.json()["permissions"]) == sorted(permissions)
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    "permissions",
    [
        [f"p{index}" for index in range(MAX_PERMISSIONS + 1)],
        ["x" * (MAX_PERMISSION_LENGTH + 1)],
        [""],
    ],
    ids=["51-names", "65-characters", "empty-name"],
)
async def test_permission_sets_beyond_the_bounds_are_422(
    start_server: ServerFactory, permissions: list[str]
) -> None:
    server = await start_server()
    admin = await make_admin(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        admin_token = (await login(http, admin["username"]))["access_token"]
        member = await register(http, "bounded")
        answer = await http.put(
            f"/users/{member['id']}/permissions",
            json={"permissions": permissions},
            headers=bearer(admin_token),
        )
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("field", ["issuer", "audience"])
def test_an_issuer_or_audience_over_255_characters_refuses_to_start(field: str) -> None:
    values: dict[str, Any] = {field: "i" * 256}
    with pytest.raises(pydantic.ValidationError, match=field):
        Settings(_env_file=None, **values)
