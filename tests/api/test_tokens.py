"""The token endpoint's output: access-token shape and the refresh grant.

Refresh tokens are single use; reuse after the grace interval revokes the
whole family (RFC 9700 §4.14.2) and is a security event.

Most tests share one server per backend (and one strict server per backend):
each registers its own user and touches only its own sessions. Tests that
need their own settings or move a clock start their own server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from bastion import Settings, create_app
from bastion.storage.keyfile import KeyFile
from bastion.storage.protocols import EventQuery
from tests.conftest import (
    GOOD_PASSWORD,
    UNLIMITED,
    ManualClock,
    RunningServer,
    ServerFactory,
    _serve,
    bearer,
    fresh_database,
    login,
    register,
)


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def header_of(token: str) -> dict[str, Any]:
    """The JOSE header of ``token``, unverified."""
    return _segment(token, 0)


def claims_of(token: str) -> dict[str, Any]:
    """The claims of ``token``, unverified."""
    return _segment(token, 1)


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    """One refresh-token grant."""
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def assert_invalid_grant(response: httpx.Response) -> None:
    """An RFC 6749 §5.2 ``invalid_grant`` answer."""
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


async def assert_rejected(client: httpx.AsyncClient, access_token: str) -> None:
    """The access token no longer opens ``/protected``."""
    response = await client.get("/protected", headers=bearer(access_token))
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


#: For tests of what the database has no part in (token signing and verification).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def unique_name() -> str:
    """A username no other test uses."""
    return "u_" + uuid.uuid4().hex[:12]


@dataclass
class Instance:
    """A running server shared by the tests of this module, and a client of it."""

    server: RunningServer
    http: httpx.AsyncClient

    async def signed_in(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new user and the token response of its first login."""
        username = unique_name()
        user = await register(self.http, username)
        return user, await login(self.http, username)


async def _instance(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, **overrides: Any
) -> AsyncIterator[Instance]:
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp("tokens") / "data",
        **UNLIMITED,
        **overrides,
    }
    if request.param == "postgres":
        values["database_url"] = await fresh_database(request.getfixturevalue("pg"))
    app = create_app(Settings(_env_file=None, **values))
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(app, stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield Instance(RunningServer(app, base_url), http)
    finally:
        for stop in reversed(stack):
            await stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Instance]:
    """A server with default token settings."""
    async for instance in _instance(request, tmp_path_factory):
        yield instance


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Instance]:
    """A server where a spent refresh token is never accepted again."""
    async for instance in _instance(request, tmp_path_factory, refresh_reuse_interval=0):
        yield instance


# -- access token shape ------------------------------------------------------------


async def test_access_token_header_is_hs256_at_jwt_with_kid(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    header = header_of(tokens["access_token"])
    assert header["alg"] == "HS256"
    assert header["typ"] == "at+jwt"
    assert isinstance(header["kid"], str)
    assert header["kid"]


async def test_access_token_verifies_with_the_generated_key_named_by_its_kid(
    shared: Instance,
) -> None:
    _, tokens = await shared.signed_in()
    token = tokens["access_token"]
    keys = KeyFile(shared.server.bastion.settings.data_dir).read()
    [key] = [key for key in keys if key.kid == header_of(token)["kid"]]
    claims = jwt.decode(
        token, key.public, algorithms=["HS256"], audience="bastion", issuer="bastion"
    )
    assert claims["iss"] == "bastion"


async def test_access_token_claims(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    claims = claims_of(tokens["access_token"])
    assert claims["sub"] == str(user["id"])
    assert claims["iss"] == "bastion"
    assert claims["aud"] == "bastion"
    assert claims["permissions"] == []
    for name in ("exp", "iat"):
        assert isinstance(claims[name], int)
    for name in ("jti", "sid"):
        assert isinstance(claims[name], str)
        assert claims[name]


async def test_access_token_carries_the_users_permissions(shared: Instance) -> None:
    username = unique_name()
    await shared.server.bastion.container.user_service.register(
        username=username,
        email=f"{username}@example.com",
        age=30,
        password=GOOD_PASSWORD,
        permissions=("reports:read", "admin"),
    )
    claims = claims_of((await login(shared.http, username))["access_token"])
    assert sorted(claims["permissions"]) == ["admin", "reports:read"]


async def test_each_access_token_has_its_own_jti(shared: Instance) -> None:
    user, first = await shared.signed_in()
    second = await login(shared.http, user["username"])
    assert claims_of(first["access_token"])["jti"] != claims_of(second["access_token"])["jti"]


async def test_each_login_opens_its_own_session(shared: Instance) -> None:
    user, first = await shared.signed_in()
    second = await login(shared.http, user["username"])
    assert claims_of(first["access_token"])["sid"] != claims_of(second["access_token"])["sid"]


async def test_access_token_lives_900_seconds_by_default(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    claims = claims_of(tokens["access_token"])
    assert claims["exp"] - claims["iat"] == 900
    assert tokens["expires_in"] == 900


@SQLITE_ONLY
async def test_access_token_ttl_is_configurable(start_server: ServerFactory) -> None:
    server = await start_server(access_token_ttl=120)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
    claims = claims_of(tokens["access_token"])
    assert claims["exp"] - claims["iat"] == 120
    assert tokens["expires_in"] == 120


async def test_token_response_is_a_bearer_pair(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert tokens["token_type"] == "bearer"
    assert isinstance(tokens["access_token"], str)
    assert isinstance(tokens["refresh_token"], str)
    assert tokens["refresh_token"] != tokens["access_token"]


async def test_token_response_is_not_cached(shared: Instance) -> None:
    user, _ = await shared.signed_in()
    response = await shared.http.post(
        "/auth/token",
        data={"grant_type": "password", "username": user["username"], "password": GOOD_PASSWORD},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_response_is_not_cached(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    response = await refresh(shared.http, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_token_is_opaque(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert "." not in tokens["refresh_token"]
    assert len(tokens["refresh_token"]) >= 43  # 32 random bytes, base64url


@SQLITE_ONLY
async def test_access_token_expires_after_its_lifetime(start_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
        clock.advance(899)
        assert (await client.get("/protected", headers=bearer(tokens))).status_code == 200
        clock.advance(900)
        await assert_rejected(client, tokens["access_token"])


# -- refresh grant -------------------------------------------------------------------


async def test_refresh_returns_a_new_pair_of_the_same_session(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    response = await refresh(shared.http, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert fresh["token_type"] == "bearer"
    assert fresh["expires_in"] == 900
    assert fresh["access_token"] != tokens["access_token"]
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert claims_of(fresh["access_token"])["sid"] == claims_of(tokens["access_token"])["sid"]


async def test_refreshed_access_token_works(shared: Instance) -> None:
    user, tokens = await shared.signed_in()
    fresh = (await refresh(shared.http, tokens["refresh_token"])).json()
    response = await shared.http.get("/protected", headers=bearer(fresh))
    assert response.status_code == 200
    assert response.json() == {"message": f"Hello user {user['id']}"}


async def test_refresh_chain_continues_with_the_newest_token(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    sid = claims_of(tokens["access_token"])["sid"]
    for _ in range(3):
        response = await refresh(shared.http, tokens["refresh_token"])
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert claims_of(tokens["access_token"])["sid"] == sid


async def test_refresh_keeps_the_access_token_of_the_refreshed_pair_alive(
    shared: Instance,
) -> None:
    _, tokens = await shared.signed_in()
    assert (await refresh(shared.http, tokens["refresh_token"])).status_code == 200
    assert (await shared.http.get("/protected", headers=bearer(tokens))).status_code == 200


async def test_expired_access_token_is_renewed_by_the_refresh_token(
    start_server: ServerFactory,
) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
        clock.advance(3600)
        response = await refresh(client, tokens["refresh_token"])
        assert response.status_code == 200, response.text
        assert (await client.get("/protected", headers=bearer(response.json()))).status_code == 200


async def test_spent_refresh_token_within_the_interval_yields_a_pair_of_the_family(
    shared: Instance,
) -> None:
    _, tokens = await shared.signed_in()
    assert (await refresh(shared.http, tokens["refresh_token"])).status_code == 200
    again = await refresh(shared.http, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert (
        claims_of(again.json()["access_token"])["sid"] == claims_of(tokens["access_token"])["sid"]
    )


async def test_concurrent_refreshes_of_one_token_both_succeed_in_one_family(
    shared: Instance,
) -> None:
    _, tokens = await shared.signed_in()
    first, second = await asyncio.gather(
        refresh(shared.http, tokens["refresh_token"]),
        refresh(shared.http, tokens["refresh_token"]),
    )
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    sid = claims_of(tokens["access_token"])["sid"]
    assert claims_of(first.json()["access_token"])["sid"] == sid
    assert claims_of(second.json()["access_token"])["sid"] == sid
    assert first.json()["refresh_token"] != second.json()["refresh_token"]


async def test_concurrent_refreshes_leave_the_family_alive(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    first, second = await asyncio.gather(
        refresh(shared.http, tokens["refresh_token"]),
        refresh(shared.http, tokens["refresh_token"]),
    )
    for response in (first, second):
        follow = await refresh(shared.http, response.json()["refresh_token"])
        assert follow.status_code == 200, follow.text
        assert (
            await shared.http.get("/protected", headers=bearer(follow.json()))
        ).status_code == 200


async def test_strict_reuse_of_a_spent_refresh_token_is_refused(strict: Instance) -> None:
    _, tokens = await strict.signed_in()
    assert (await refresh(strict.http, tokens["refresh_token"])).status_code == 200
    assert_invalid_grant(await refresh(strict.http, tokens["refresh_token"]))


async def test_strict_reuse_revokes_the_newest_refresh_token_of_the_family(
    strict: Instance,
) -> None:
    _, tokens = await strict.signed_in()
    fresh = (await refresh(strict.http, tokens["refresh_token"])).json()
    assert_invalid_grant(await refresh(strict.http, tokens["refresh_token"]))
    assert_invalid_grant(await refresh(strict.http, fresh["refresh_token"]))


async def test_strict_reuse_revokes_the_access_tokens_of_the_family(strict: Instance) -> None:
    _, tokens = await strict.signed_in()
    fresh = (await refresh(strict.http, tokens["refresh_token"])).json()
    assert_invalid_grant(await refresh(strict.http, tokens["refresh_token"]))
    await assert_rejected(strict.http, tokens["access_token"])
    await assert_rejected(strict.http, fresh["access_token"])


async def test_strict_reuse_spares_the_users_other_sessions(strict: Instance) -> None:
    user, stolen = await strict.signed_in()
    other = await login(strict.http, user["username"])
    assert (await refresh(strict.http, stolen["refresh_token"])).status_code == 200
    assert_invalid_grant(await refresh(strict.http, stolen["refresh_token"]))
    assert (await strict.http.get("/protected", headers=bearer(other))).status_code == 200
    assert (await refresh(strict.http, other["refresh_token"])).status_code == 200


async def test_strict_reuse_is_a_security_event(strict: Instance) -> None:
    user, tokens = await strict.signed_in()
    assert (await refresh(strict.http, tokens["refresh_token"])).status_code == 200
    assert_invalid_grant(await refresh(strict.http, tokens["refresh_token"]))
    events = await strict.server.bastion.container.events.query(
        EventQuery(type="authn_token_reuse", user_id=user["id"])
    )
    assert len(events) == 1
    [event] = events
    assert event.outcome == "failure"
    assert tokens["refresh_token"] not in json.dumps(event.detail)


async def test_reuse_after_the_default_interval_revokes_the_family(
    start_server: ServerFactory,
) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
        fresh = (await refresh(client, tokens["refresh_token"])).json()
        clock.advance(11)  # past BASTION_REFRESH_REUSE_INTERVAL's default of 10 s
        assert_invalid_grant(await refresh(client, tokens["refresh_token"]))
        assert_invalid_grant(await refresh(client, fresh["refresh_token"]))
        await assert_rejected(client, fresh["access_token"])


async def test_refresh_token_expires_after_its_lifetime(start_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock, refresh_token_ttl=3600)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
        clock.advance(3601)
        assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


@pytest.mark.parametrize(
    "refresh_token",
    ["garbage", "\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9", "' OR 1=1 --", "x" * 43],
)
async def test_unknown_refresh_token_is_invalid_grant(shared: Instance, refresh_token: str) -> None:
    assert_invalid_grant(await refresh(shared.http, refresh_token))


async def test_access_token_is_not_a_refresh_token(shared: Instance) -> None:
    _, tokens = await shared.signed_in()
    assert_invalid_grant(await refresh(shared.http, tokens["access_token"]))


@pytest.mark.parametrize("length", [257, 5000, 60_000])
async def test_overlong_refresh_token_is_400(shared: Instance, length: int) -> None:
    response = await refresh(shared.http, "A" * length)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}


async def test_missing_refresh_token_is_invalid_request(shared: Instance) -> None:
    response = await shared.http.post("/auth/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
