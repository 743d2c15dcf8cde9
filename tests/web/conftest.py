"""Helpers for the page tests: a cookie-keeping client that posts like a
browser (same-origin headers, the page's CSRF token)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from tests.conftest import GOOD_PASSWORD, RunningServer, make_admin

CSRF_FIELD = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class PageClient:
    """Visits pages as one browser.

    ``httpx`` never sends ``Secure`` cookies over plain HTTP (nor should it),
    so this client keeps the cookies itself and sends them as a browser on a
    potentially trustworthy origin (127.0.0.1) does.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.cookies: dict[str, str] = {}
        self.raw_set_cookies: list[str] = []

    @property
    def origin(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def _absorb(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            self.raw_set_cookies.append(header)
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value or morsel.value == '""':
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        headers.update(extra or {})
        return headers

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = self._headers(kwargs.pop("headers", None))
        response = await self.http.get(path, headers=headers, **kwargs)
        self._absorb(response)
        return response

    async def post(
        self,
        path: str,
        data: dict[str, str],
        *,
        csrf_from: str | None = None,
        headers: dict[str, str] | None = None,
        same_origin: bool = True,
    ) -> httpx.Response:
        """Post a form; the token is read from ``csrf_from`` (a page path)."""
        form = dict(data)
        if csrf_from is not None:
            page = await self.get(csrf_from)
            if page.status_code == 303:  # signed in already: the session's token
                page = await self.get(page.headers["location"])
            form["csrf"] = csrf_of(page.text)
        sent = {"Origin": self.origin, "Sec-Fetch-Site": "same-origin"} if same_origin else {}
        sent.update(headers or {})
        response = await self.http.post(path, data=form, headers=self._headers(sent))
        self._absorb(response)
        return response

    async def sign_in(self, username: str, password: str = GOOD_PASSWORD) -> httpx.Response:
        response = await self.post(
            "/account/login",
            {"username": username, "password": password},
            csrf_from="/account/login",
        )
        assert response.status_code == 303, response.text
        return response


@pytest.fixture
async def pages(server: RunningServer) -> AsyncIterator[PageClient]:
    """A page client of ``server``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        yield PageClient(http)


@pytest.fixture
async def admin_pages(server: RunningServer) -> AsyncIterator[PageClient]:
    """A page client signed in as the admin ``root``."""
    await make_admin(server)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        client = PageClient(http)
        await client.sign_in("root")
        yield client
