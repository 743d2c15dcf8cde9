"""The seam for pages whose services other work adds: a module is mounted
only when the container has its service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bastion import Bastion, Settings
from bastion.types import Principal, RequestContext
from tests.conftest import GOOD_PASSWORD, UNLIMITED
from tests.web.conftest import PageClient


class FakeRecovery:
    """Stands in for the recovery service of the mail work."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def request_reset(self, email: str, *, context: RequestContext | None = None) -> None:
        self.calls.append(("forgot", email))

    async def reset_password(
        self, token: str, new_password: str, *, context: RequestContext | None = None
    ) -> None:
        self.calls.append(("reset", token))

    async def verify_email(self, token: str, *, context: RequestContext | None = None) -> None:
        self.calls.append(("verify", token))


async def serve(app: FastAPI) -> AsyncIterator[PageClient]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as http,
    ):
        yield PageClient(http)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", **UNLIMITED}
    return Settings(_env_file=None, **values)


async def test_recovery_pages_are_absent_without_the_service(settings: Settings) -> None:
    app = FastAPI()
    Bastion(settings).install(app)
    async for pages in serve(app):
        assert (await pages.get("/account/forgot")).status_code == 404
        assert "Forgot your password" not in (await pages.get("/account/login")).text


async def test_recovery_pages_are_mounted_with_the_service(settings: Settings) -> None:
    app = FastAPI()
    auth = Bastion(settings)
    fake = FakeRecovery()
    auth.container.recovery_service = fake  # type: ignore[attr-defined]
    auth.install(app)
    async for pages in serve(app):
        assert "Forgot your password" in (await pages.get("/account/login")).text
        response = await pages.post(
            "/account/forgot", {"email": "a@example.com"}, csrf_from="/account/forgot"
        )
        assert response.status_code == 202
        reset = await pages.get("/account/reset")
        assert "data-fragment-token" in reset.text
        response = await pages.post(
            "/account/reset",
            {"token": "t0k", "new_password": "x" * 20, "new_password_confirm": "x" * 20},
            csrf_from="/account/reset",
        )
        assert response.status_code == 303
        response = await pages.post("/account/verify", {"token": "v"}, csrf_from="/account/verify")
        assert "Your address is confirmed." in response.text
    assert fake.calls == [("forgot", "a@example.com"), ("reset", "t0k"), ("verify", "v")]


async def test_pages_mount_under_a_prefix(settings: Settings) -> None:
    app = FastAPI()
    Bastion(settings).install(app, prefix="/auth-service")
    async for pages in serve(app):
        page = await pages.get("/auth-service/account/login")
        assert page.status_code == 200
        assert 'action="/auth-service/account/login"' in page.text
        assert 'href="/auth-service/static/bastion/bastion.css"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await pages.get("/auth-service/static/bastion/bastion.css")).status_code == 200


class FakeSessions:
    """Stands in for the session service of the sessions work."""

    def __init__(self) -> None:
        self.revoked: list[tuple[int, str]] = []

    async def list_sessions(self, user_id: int, *, current: str | None = None) -> list[Any]:
        row = SimpleNamespace(
            id="other-session",
            current=False,
            created_at=1.0e9,
            last_used_at=1.0e9,
            ip="198.51.100.7",
            user_agent="<b>agent</b>",
        )
        return [row]

    async def revoke_session(
        self,
        user_id: int,
        session_id: str,
        *,
        actor: Principal,
        context: RequestContext | None = None,
    ) -> None:
        self.revoked.append((user_id, session_id))

    async def revoke_all(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> None:
        self.revoked.append((user_id, "*"))


async def test_sessions_lists_and_revokes_when_the_service_exists(settings: Settings) -> None:
    app = FastAPI()
    auth = Bastion(settings)
    fake = FakeSessions()
    auth.container.session_service = fake  # type: ignore[attr-defined]
    auth.install(app)
    async for pages in serve(app):
        await auth.container.user_service.register(
            username="root",
            email="r@example.com",
            age=40,
            password=GOOD_PASSWORD,
            permissions=("admin",),
        )
        await pages.sign_in("root")
        account = await pages.get("/account")
        assert "198.51.100.7" in account.text
        assert "&lt;b&gt;agent&lt;/b&gt;" in account.text
        response = await pages.post(
            "/account/sessions/other-session/revoke", {}, csrf_from="/account"
        )
        assert response.headers["location"] == "/account"
        response = await pages.post(
            "/admin/users/1/sessions/revoke", {}, csrf_from="/admin/users/1"
        )
        assert response.status_code == 303
    assert fake.revoked == [(1, "other-session"), (1, "*")]
