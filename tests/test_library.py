"""SPEC's library use: a FastAPI app of one's own with Bastion installed in it.

The app below is the SPEC example, served by uvicorn like the service itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from bastion import Bastion, Settings, User
from bastion.api.leanroute import LeanRoute
from bastion.types import Principal
from tests.conftest import GOOD_PASSWORD, SettingsFactory, _serve, bearer, login, register


def build_reports_app(settings: Settings, *, prefix: str = "") -> tuple[FastAPI, Bastion]:
    """SPEC's example, verbatim but for the route body."""
    app = FastAPI()
    auth = Bastion(settings)
    auth.install(app, prefix=prefix)

    @app.get("/reports", dependencies=[Depends(auth.require("reports:read"))])
    async def reports(user: User = Depends(auth.current_user)) -> dict[str, object]:
        return {"reports": ["q3"], "for": user.username}

    return app, auth


@dataclass
class LibraryApp:
    """The served example app and its Bastion."""

    auth: Bastion
    client: httpx.AsyncClient


async def _start(
    settings: Settings, prefix: str = ""
) -> tuple[LibraryApp, list[Callable[[], Awaitable[None]]]]:
    app, auth = build_reports_app(settings, prefix=prefix)
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(app, stack)
    return LibraryApp(auth, httpx.AsyncClient(base_url=base_url, timeout=30)), stack


@pytest.fixture
async def library(make_settings: SettingsFactory) -> AsyncIterator[LibraryApp]:
    """The example app on this test's backend."""
    served, stack = await _start(await make_settings())
    try:
        yield served
    finally:
        await served.client.aclose()
        for stop in reversed(stack):
            await stop()


async def make_library_admin(auth: Bastion) -> str:
    """An admin created through the library's services; returns an access token."""
    await auth.container.user_service.register(
        username="boss",
        email="boss@example.com",
        age=50,
        password=GOOD_PASSWORD,
        permissions=("admin",),
    )
    pair = await auth.container.auth_service.password_grant("boss", GOOD_PASSWORD)
    return pair.access_token


async def test_route_without_token_is_401(library: LibraryApp) -> None:
    response = await library.client.get("/reports")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_route_with_bad_token_is_401(library: LibraryApp) -> None:
    response = await library.client.get("/reports", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_user_without_the_permission_gets_403(library: LibraryApp) -> None:
    await register(library.client, "reader")
    tokens = await login(library.client, "reader")
    response = await library.client.get("/reports", headers=bearer(tokens))
    assert response.status_code == 403


async def test_user_granted_the_permission_gets_in_after_logging_in_again(
    library: LibraryApp,
) -> None:
    user = await register(library.client, "reader")
    admin_token = await make_library_admin(library.auth)
    granted = await library.client.put(
        f"/users/{user['id']}/permissions",
        json={"permissions": ["reports:read"]},
        headers=bearer(admin_token),
    )
    assert granted.status_code == 200, granted.text
    tokens = await login(library.client, "reader")
    response = await library.client.get("/reports", headers=bearer(tokens))
    assert response.status_code == 200
    assert response.json() == {"reports": ["q3"], "for": "reader"}


async def test_admin_holds_every_permission(library: LibraryApp) -> None:
    admin_token = await make_library_admin(library.auth)
    response = await library.client.get("/reports", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.json()["for"] == "boss"


async def test_own_routes_get_the_security_headers(library: LibraryApp) -> None:
    response = await library.client.get("/reports")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_bastion_routes_can_be_mounted_under_a_prefix(
    make_settings: SettingsFactory,
) -> None:
    served, stack = await _start(await make_settings(), prefix="/accounts")
    body = {"username": "prefixed", "email": "p@example.com", "age": 30, "password": GOOD_PASSWORD}
    form = {"grant_type": "password", "username": "prefixed", "password": GOOD_PASSWORD}
    try:
        created = await served.client.post("/accounts/users", json=body)
        token = await served.client.post("/accounts/auth/token", data=form)
        unprefixed = await served.client.post("/auth/token", data=form)
    finally:
        await served.client.aclose()
        for stop in reversed(stack):
            await stop()
    assert created.status_code == 201, created.text
    assert token.status_code == 200, token.text
    assert unprefixed.status_code == 404


async def test_dependency_overrides_reach_bastions_own_routes(
    make_settings: SettingsFactory,
) -> None:
    """Bastion's routes join the app's route list (not a lazily included
    router); the app's ``dependency_overrides`` must still apply to them, as
    tests of a host app rely on."""
    app, auth = build_reports_app(await make_settings())
    stand_in = User(
        id=4242,
        username="standin",
        email="s@example.com",
        age=40,
        permissions=(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )

    async def user_override() -> User:
        return stand_in

    async def principal_override() -> Principal:
        return Principal(user_id=4242, session_id="s", token_id="t")

    app.dependency_overrides[auth.current_user] = user_override
    app.dependency_overrides[auth.principal] = principal_override
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(app, stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            me = await client.get("/users/me")
    finally:
        for stop in reversed(stack):
            await stop()
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "standin"


async def test_a_request_only_route_reads_the_principal_without_a_dependency(
    make_settings: SettingsFactory,
) -> None:
    """The README's LeanRoute example: 200 with a token, 401 without, and
    bearer-protected in the OpenAPI document."""
    app = FastAPI()
    auth = Bastion(await make_settings())
    auth.install(app)

    async def hello(request: Request) -> JSONResponse:
        principal = auth.principal_of(request)
        return JSONResponse({"hello": principal.user_id})

    app.router.add_api_route(
        "/hello", auth.token_endpoint(hello), methods=["GET"], route_class_override=LeanRoute
    )
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(app, stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            user = await register(client, "leanroute")
            token = (await login(client, "leanroute"))["access_token"]
            anonymous = await client.get("/hello")
            signed_in = await client.get("/hello", headers=bearer(str(token)))
            document = (await client.get("/openapi.json")).json()
    finally:
        for stop in reversed(stack):
            await stop()
    assert anonymous.status_code == 401
    assert signed_in.status_code == 200
    assert signed_in.json() == {"hello": user["id"]}
    operation = document["paths"]["/hello"]["get"]
    assert operation.get("security")
    assert "401" in operation["responses"]
