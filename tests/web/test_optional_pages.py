"""The seam for pages whose services other work adds: a module is mounted
only when the container has its service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bastion import Bastion, Settings
from bastion.types import RequestContext
from tests.conftest import UNLIMITED
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
