"""``bastion serve`` serves the web pages, and ``BASTION_WEB=false`` removes them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.deploy.test_process import bastion_serve, service_env
from tests.web.test_pages import PAGE_CSP


async def test_bastion_serve_serves_the_pages(tmp_path: Path) -> None:
    async with (
        bastion_serve(tmp_path, service_env(tmp_path)) as service,
        httpx.AsyncClient(base_url=service.base_url) as http,
    ):
        page = await http.get("/account/login")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == PAGE_CSP
        assert "__Host-bastion-anon=" in page.headers["set-cookie"]
        assert (await http.get("/static/bastion/bastion.css")).status_code == 200


async def test_bastion_serve_without_pages(tmp_path: Path) -> None:
    env = service_env(tmp_path, BASTION_WEB="false")
    async with (
        bastion_serve(tmp_path, env) as service,
        httpx.AsyncClient(base_url=service.base_url) as http,
    ):
        assert (await http.get("/account/login")).status_code == 404
        assert (await http.get("/health")).status_code == 200
