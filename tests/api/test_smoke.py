"""The core flow of the README's tour, end to end."""

from __future__ import annotations

import httpx

from tests.conftest import bearer, login, register


async def test_register_login_and_call_protected(client: httpx.AsyncClient) -> None:
    user = await register(client, "alice")
    tokens = await login(client, "ALICE")
    response = await client.get("/protected", headers=bearer(tokens))
    assert response.status_code == 200
    assert response.json() == {"message": f"Hello user {user['id']}"}
